// #/alerts?env=: the Slack collector's alerts (GET api/alerts), firing first, then
// resolved, and the silences (GET api/silences?ended=true), active first, then ended.
// Every env, generation, service, host and advisory links to its page. Until a Slack
// collector has run on this ledger the page says so: "no alerts" would read as "nothing
// failed".

import { getJSON } from "../api.js";
import { formatCount, formatTime, h, keptView, panel, plural, scrollTable } from "../dom.js";
import { advisoryHref, envHref, generationLink, hostLink, link, serviceLink } from "../router.js";
import { cell, envOptions, filterForm } from "./vulns.js";

const PAGE = 1000;
/** Host names shown per alert; the rest are counted. */
const HOSTS_SHOWN = 5;
/** Never colour alone: a shape and the word. */
const STATUS_SHAPES = { firing: "●", stale: "◌", resolved: "✓", active: "●", ended: "○" };
const PATTERN = /[*?[\]]/;

export async function render(container, route, context) {
  const env = route.query.get("env") || "";
  const view = keptView(container, route.hash, () => build(route, context));
  const [answer, silences] = await Promise.all([everyAlert(env), getJSON("api/silences", { ended: true })]);
  if (!context.isCurrent()) return;
  view.missing.hidden = answer.collector;
  const firing = answer.alerts.filter((a) => a.status !== "resolved");
  const resolved = answer.alerts.filter((a) => a.status === "resolved");
  fill(view.firing, firing.map(alertRow), `${plural(firing.length, "alert")} firing or stale`);
  fill(view.resolved, resolved.map(alertRow), `${plural(resolved.length, "alert")} resolved`);
  const ordered = [...silences.filter((s) => s.active), ...silences.filter((s) => !s.active)];
  const active = ordered.filter((s) => s.active).length;
  fill(
    view.silences,
    ordered.map((s) => silenceRow(s, context.envs)),
    `${formatCount(active)} active, ${formatCount(ordered.length - active)} ended or to come`,
  );
}

/** Every alert (all pages), and whether a collector ever ran. */
async function everyAlert(env) {
  let page = await getJSON("api/alerts", { env, limit: PAGE });
  const alerts = [...page.alerts.items];
  while (page.alerts.next && page.alerts.items.length) {
    page = await getJSON("api/alerts", { env, limit: PAGE, offset: alerts.length });
    alerts.push(...page.alerts.items);
  }
  return { collector: page.collector, alerts };
}

function fill(part, rows, count) {
  part.table.querySelector("tbody").replaceChildren(...rows);
  part.count.textContent = count;
  part.empty.hidden = rows.length > 0;
  part.table.hidden = rows.length === 0;
}

function build(route, context) {
  const form = filterForm(route, [{ name: "env", label: "env", options: envOptions(context.envs) }], "alerts-filter");
  const missing = h(
    "p",
    { class: "notice", role: "status", dataset: { testid: "no-collector" }, hidden: true },
    "No Slack collector has run on this ledger, so nothing has been looked at for alerts yet. " +
      "Start one: ledger collect --slack-webhook URL (or set LEDGER_SLACK_WEBHOOK).",
  );
  const columns = ["status", "env", ["gen", "num"], "service", "kind", "hosts", "summary", "since (UTC)", "changed (UTC)", "silenced by", "Slack told"];
  const firing = part("alerts-firing", "Firing", columns, "No alert is firing.");
  const resolved = part("alerts-resolved", "Resolved", columns, "No resolved alert.");
  const silences = part(
    "silences",
    "Silences",
    ["state", "id", "matches", "from (UTC)", "until (UTC)", "by", "comment"],
    "No silence.",
    "active first; ledger silence add to add one",
  );
  firing.node.insertBefore(form, firing.node.querySelector(".panel-head").nextSibling);
  firing.node.insertBefore(missing, form.nextSibling);
  return { nodes: [firing.node, resolved.node, silences.node], firing, resolved, silences, missing };
}

function part(id, title, columns, emptyText, hint = null) {
  const table = scrollTable(title.toLowerCase(), columns, [], {
    class: "ops-cards",
    dataset: { testid: `${id}-table` },
  });
  table.classList.add("ops-cards-scroll");
  const count = h("span", { class: "hint", dataset: { testid: `${id}-count` } });
  const empty = h("p", { class: "hint", hidden: true }, emptyText);
  const node = panel({ id, title, hint }, table, empty);
  node.querySelector(".panel-head").append(count);
  return { node, table, count, empty };
}

function statusBadge(status) {
  return h(
    "span",
    { class: `alert-status st-${status}`, dataset: { status } },
    h("span", { class: "shape", "aria-hidden": "true" }, STATUS_SHAPES[status] || "?"),
    " ",
    status,
  );
}

function alertRow(alert) {
  const env = alert.env;
  const single = alert.host_names.length === 1 ? alert.host_names[0] : null;
  const shown = alert.host_names.slice(0, HOSTS_SHOWN);
  const more = alert.hosts - shown.length;
  return h(
    "tr",
    {
      dataset: {
        fingerprint: alert.fingerprint,
        status: alert.status,
        hosts: alert.hosts,
        generation: alert.generation,
        kind: alert.kind,
      },
    },
    cell(null, { class: "nowrap" }, statusBadge(alert.status)),
    cell("env", { class: "nowrap" }, link(envHref(env), env)),
    cell("gen", { class: "num" }, alert.generation ? generationLink(env, alert.generation) : "–"),
    cell("service", {}, serviceLink(env, alert.service, { generation: alert.generation, host: single })),
    cell(
      "kind",
      { class: "nowrap" },
      alert.advisory
        ? link(advisoryHref(alert.advisory, { env }), alert.advisory, { class: "mono advisory-link" })
        : alert.kind,
    ),
    cell(
      "hosts",
      { class: "hosts" },
      h("span", { class: "num" }, formatCount(alert.hosts)),
      alert.total_hosts ? ` of ${formatCount(alert.total_hosts)}` : "",
      shown.length ? ": " : "",
      shown.map((host, i) => [i ? ", " : "", hostLink(env, host)]),
      more > 0 ? ` and ${formatCount(more)} more` : "",
    ),
    cell(null, { class: "summary" }, alert.summary, alert.resolution ? h("div", { class: "hint" }, alert.resolution) : null),
    cell("since", { class: "time" }, formatTime(alert.since)),
    cell("changed", { class: "time" }, formatTime(alert.changed_at)),
    cell("silenced by", { class: "mono" }, alert.silenced_by.join(", ") || "–"),
    cell("Slack", { class: "nowrap" }, alert.notified ? `${alert.notified} ${formatTime(alert.notified_at)}` : "not told yet"),
  );
}

function silenceRow(silence, envs) {
  const state = silence.active ? "active" : "ended";
  const parts = [
    silence.env
      ? ["env=", !PATTERN.test(silence.env) && envs.includes(silence.env) ? link(envHref(silence.env), silence.env) : silence.env]
      : null,
    silence.service ? ["service=", silence.service] : null,
    silence.kind ? ["kind=", silence.kind] : null,
    silence.advisory
      ? [
          "advisory=",
          PATTERN.test(silence.advisory)
            ? silence.advisory
            : link(advisoryHref(silence.advisory), silence.advisory, { class: "mono advisory-link" }),
        ]
      : null,
  ].filter(Boolean);
  return h(
    "tr",
    { dataset: { id: silence.id, active: silence.active } },
    cell(null, { class: "nowrap" }, statusBadge(state), silence.expired_by ? h("div", { class: "hint" }, `expired by ${silence.expired_by}`) : null),
    cell("id", { class: "mono" }, silence.id),
    cell(null, { class: "matches" }, parts.map((p, i) => [i ? " " : "", p])),
    cell("from", { class: "time" }, formatTime(silence.starts_at)),
    cell("until", { class: "time" }, formatTime(silence.ends_at)),
    cell("by", {}, silence.created_by),
    cell(null, { class: "comment" }, silence.comment || "–"),
  );
}
