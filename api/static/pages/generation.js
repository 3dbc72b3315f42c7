// #/generation/ENV/N: one generation — what it is (status, reason, parent and children
// as links), its rollout over time (charts.js), what changed from its parent (inline)
// and a form to compare it with any other, its failures, its alerts, and its manifest
// grouped by service and build, every host a link. An unknown generation is the API's
// 404, shown on the page.

import { ApiError, getAllPages, getJSON } from "../api.js";
import {
  drawChart,
  formatCount,
  formatTime,
  h,
  keptView,
  panel,
  plural,
  scrollTable,
} from "../dom.js";
import { failureRow } from "../failures.js";
import {
  buildLink,
  diffHref,
  envHref,
  generationLink,
  hostLink,
  link,
  serviceLink,
} from "../router.js";
import { renderDiff } from "./diff.js";

export async function render(container, route, context) {
  const { env } = route.params;
  const number = Number(route.params.number);
  const view = keptView(container, route.hash, () => build(env, number));
  // First the generation itself: an unknown one is the page's error (404).
  const generation = await getJSON(`api/generations/${encodeURIComponent(route.params.number)}`, {
    env,
  });
  const [all, failures, alerts, diff] = await Promise.all([
    getAllPages("api/generations", { env }),
    getAllPages("api/failures", { env }),
    alertsOf(env, number),
    generation.parent ? getJSON("api/diff", { env, a: generation.parent, b: number }) : null,
  ]);
  if (!context.isCurrent()) return;
  drawFacts(view, generation, all);
  view.form.dataset.numbers = all.map((g) => g.number).join(" ");
  if (diff) {
    renderDiff(view.diff, diff);
    view.diff.prepend(
      h(
        "p",
        {},
        link(
          diffHref(env, generation.parent, number),
          `#${generation.parent} → #${number} as a page`,
          { dataset: { testid: "diff-link" } },
        ),
      ),
    );
  } else {
    view.diff.replaceChildren(h("p", { class: "hint" }, "The first generation: no parent."));
  }
  drawFailures(view, failures.filter((f) => f.generation === number).reverse());
  drawAlerts(view, env, number, alerts);
  drawManifest(view, env, number, generation.manifest);
  await drawChart(view.rollout, "renderRollout", { env, number });
}

function build(env, number) {
  const facts = h("dl", { class: "facts", dataset: { testid: "generation-facts" } });
  const rollout = h("div", { class: "chart-holder" });
  const diff = h("div", { class: "diff", dataset: { testid: "generation-diff" } });
  const other = h("input", {
    name: "other",
    type: "number",
    min: "1",
    step: "1",
    required: true,
    inputmode: "numeric",
    class: "mono",
    size: "6",
  });
  const formError = h("p", { class: "error", role: "alert", hidden: true });
  const form = h(
    "form",
    {
      class: "compare-form",
      dataset: { testid: "compare-form" },
      autocomplete: "off",
      novalidate: true,
    },
    h("label", {}, `compare #${number} with generation `, other),
    h("button", { type: "submit" }, "diff"),
    formError,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = other.value.trim();
    const known = (form.dataset.numbers || "").split(" ");
    if (!/^\d+$/.test(value) || !known.includes(String(Number(value)))) {
      formError.textContent =
        `${env} has no generation "${value}"; its generations are 1–${known.length}.`;
      formError.hidden = false;
      return;
    }
    formError.hidden = true;
    const a = Math.min(Number(value), number);
    const b = Math.max(Number(value), number);
    window.location.hash = diffHref(env, a, b);
  });
  const failures = scrollTable(
    "this generation's failures",
    ["time (UTC)", "env", "host", "service", ["gen", "num"], "reason"],
    [],
    { class: "cards", dataset: { testid: "generation-failures" } },
  );
  failures.classList.add("failures-scroll");
  const failuresEmpty = h("p", { class: "hint", hidden: true }, "No failure recorded in it.");
  const alerts = h("div", { dataset: { testid: "generation-alerts" } });
  const manifest = h("div", { dataset: { testid: "generation-manifest" } });
  const manifestCount = h("span", { class: "hint" });
  const manifestPanel = panel({ id: "generation-manifest-panel", title: "Manifest" }, manifest);
  manifestPanel.querySelector(".panel-head").append(manifestCount);
  return {
    nodes: [
      panel({ id: "generation-panel", title: `${env}: generation #${number}` }, facts),
      panel({ id: "generation-rollout", title: "Rollout", hint: "over time" }, rollout),
      panel(
        { id: "generation-diff-panel", title: "Changes from its parent" },
        form,
        diff,
      ),
      panel(
        { id: "generation-failures-panel", title: "Failures", wide: false },
        failures,
        failuresEmpty,
      ),
      panel({ id: "generation-alerts-panel", title: "Alerts", wide: false }, alerts),
      manifestPanel,
    ],
    facts,
    rollout,
    diff,
    form,
    failures,
    failuresEmpty,
    alerts,
    manifest,
    manifestCount,
  };
}

function drawFacts(view, g, all) {
  const children = all.filter((other) => other.parent === g.number);
  const fact = (term, ...value) => [h("dt", {}, term), h("dd", {}, ...value)];
  view.facts.replaceChildren(
    ...fact("env", link(envHref(g.env), g.env)),
    ...fact(
      "status",
      h("span", { class: `badge status status-${slug(g.status)}` }, g.status),
      g.bad ? [" ", h("span", { class: "badge bad" }, "✗ marked bad")] : null,
    ),
    ...fact(
      "reason",
      g.reason,
      g.target ? [" to ", generationLink(g.env, g.target)] : null,
    ),
    ...fact("parent", g.parent ? generationLink(g.env, g.parent) : "none (the first)"),
    ...fact(
      "children",
      children.length
        ? children.map((child, i) => [i ? ", " : "", generationLink(child.env, child.number)])
        : "none",
    ),
    ...(g.rolled_back_by ? fact("rolled back by", generationLink(g.env, g.rolled_back_by)) : []),
    ...fact("planned", h("span", { class: "time" }, formatTime(g.planned_at))),
    ...fact("finished", h("span", { class: "time" }, formatTime(g.finished_at))),
    ...fact("by", g.actor),
    ...fact("revision", h("span", { class: "mono" }, g.source_revision ?? "–")),
    ...fact("placements", formatCount(g.placements)),
    ...(g.tags.length ? fact("tags", g.tags.map((tag) => h("span", { class: "tag" }, tag))) : []),
    ...(g.failure ? fact("failure", h("span", { class: "failure-text" }, g.failure)) : []),
  );
}

function drawFailures(view, failures) {
  view.failures.querySelector("tbody").replaceChildren(...failures.map((f) => failureRow(f)));
  view.failuresEmpty.hidden = failures.length > 0;
}

/**
 * The generation's alerts (GET api/alerts?env=&generation=, from the Slack collector's
 * state). A 404 of the route itself (a server without it), or a ledger no collector ever
 * ran on, says the state is not there.
 */
async function alertsOf(env, number) {
  try {
    return { answer: await getJSON("api/alerts", { env, generation: number }) };
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return { missing: true };
    if (error instanceof ApiError && error.status !== 401) return { error };
    throw error;
  }
}

function drawAlerts(view, env, number, alerts) {
  const missing = h("p", { class: "hint" }, "alerts: the Slack collector's state is not available");
  if (alerts.missing || (alerts.answer && alerts.answer.collector === false)) {
    view.alerts.replaceChildren(missing);
    return;
  }
  if (alerts.error) {
    view.alerts.replaceChildren(
      h("p", { class: "error", role: "alert" }, `alerts: ${alerts.error.describe()}`),
    );
    return;
  }
  const page = alerts.answer.alerts;
  if (!page.items.length) {
    view.alerts.replaceChildren(h("p", { class: "hint" }, "No alert about this generation."));
    return;
  }
  const rows = page.items.map((alert) =>
    h(
      "tr",
      { dataset: { fingerprint: alert.fingerprint, status: alert.status } },
      h("td", { class: `alert-status status-${slug(alert.status)}` }, alert.status),
      h("td", {}, alert.kind.replaceAll("_", " ")),
      h("td", {}, serviceLink(env, alert.service, { generation: number })),
      h(
        "td",
        {},
        plural(alert.hosts, "host"),
        alert.host_names.length ? ": " : "",
        alert.host_names.map((host, i) => [i ? ", " : "", hostLink(env, host)]),
      ),
      h("td", {}, alert.summary),
      h("td", { class: "time" }, formatTime(alert.since)),
    ),
  );
  view.alerts.replaceChildren(
    scrollTable("alerts", ["status", "kind", "service", "hosts", "summary", "since (UTC)"], rows, {
      class: "generation-alerts",
    }),
    page.total > page.items.length
      ? h("p", { class: "hint" }, `the first ${page.items.length} of ${page.total}`)
      : "",
  );
}

/** The manifest by service and build: how many hosts, and the hosts (links) when opened. */
function drawManifest(view, env, number, manifest) {
  const groups = new Map();
  for (const entry of manifest) {
    const key = `${entry.service}\u0000${entry.build_id}`;
    if (!groups.has(key)) groups.set(key, { ...entry, hosts: [] });
    groups.get(key).hosts.push(entry.host);
  }
  const rows = [...groups.values()]
    .sort((a, b) => a.service.localeCompare(b.service) || a.build_id.localeCompare(b.build_id))
    .map((group) =>
      h(
        "tr",
        { dataset: { service: group.service, hosts: group.hosts.length } },
        h("td", {}, serviceLink(env, group.service, { generation: number })),
        h(
          "td",
          { class: "build" },
          buildLink(env, group.build_id, { generation: number }),
          " ",
          h("span", { class: "build-version" }, versionOf(group.artifact, group.service)),
        ),
        h(
          "td",
          {},
          h(
            "details",
            { class: "hosts" },
            h("summary", {}, plural(group.hosts.length, "host")),
            h(
              "span",
              { class: "host-links" },
              group.hosts
                .sort((a, b) => a.localeCompare(b, "en", { numeric: true }))
                .map((host) => [hostLink(env, host), " "]),
            ),
          ),
        ),
        h(
          "td",
          {},
          (group.depends_on || []).length
            ? group.depends_on.map((service, i) => [
                i ? ", " : "",
                serviceLink(env, service, { generation: number }),
              ])
            : "–",
        ),
      ),
    );
  view.manifestCount.textContent = `${plural(manifest.length, "placement")} · ${plural(
    new Set(manifest.map((m) => m.host)).size,
    "host",
  )} · ${plural(groups.size, "service build")}`;
  view.manifest.replaceChildren(
    scrollTable("manifest", ["service", "build", "hosts", "depends on"], rows, {
      class: "manifest",
      dataset: { testid: "manifest" },
    }),
  );
}

/** "/nix/store/…-api-4.3.9" -> "4.3.9" (the artifact's version after the service's name). */
function versionOf(artifact, service) {
  if (!artifact) return "";
  const tail = artifact.split("/").pop();
  const at = tail.lastIndexOf(`${service}-`);
  return at >= 0 ? tail.slice(at + service.length + 1) : "";
}

function slug(text) {
  return String(text || "unknown").toLowerCase().replace(/[^a-z0-9]+/g, "-");
}
