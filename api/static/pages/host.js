// #/host/ENV/HOST: one host — what it runs with each service's health (text and shape,
// not colour alone), the packages of its closures with a search box, and its history,
// newest first, a page at a time. A host the ledger has nothing active on and no history
// of is the API's 404, shown on the page.

import { ApiError, getJSON } from "../api.js";
import {
  formatCount,
  formatTime,
  h,
  healthBadge,
  keptView,
  panel,
  plural,
  scrollTable,
} from "../dom.js";
import { buildLink, envHref, generationLink, link, packageLink, serviceLink } from "../router.js";

const HISTORY_PAGE = 50;

export async function render(container, route, context) {
  const { env, host } = route.params;
  const view = keptView(container, route.hash, () => build(env, host));
  const path = `api/hosts/${encodeURIComponent(host)}`;
  const [manifest, history] = await Promise.all([
    getJSON(`${path}/manifest`, { env }).catch((error) => {
      if (error instanceof ApiError && error.status === 404) return { refused: error };
      throw error;
    }),
    historyPage(path, env, view.historyPage),
  ]);
  if (!context.isCurrent()) return;
  // Nothing active and nothing ever happened: a host the ledger does not know.
  if (manifest.refused && history.total === 0) throw manifest.refused;
  const placements = manifest.refused ? [] : manifest;
  drawServices(view, env, host, placements, manifest.refused);
  drawClosure(view, env, placements);
  drawHistory(view, env, history);
  view.load = () => render(container, route, context);
}

function build(env, host) {
  const services = h("div", { dataset: { testid: "host-services" } });
  const search = h("input", {
    type: "search",
    name: "package",
    spellcheck: "false",
    autocomplete: "off",
    placeholder: "openssl",
    dataset: { testid: "closure-search" },
  });
  const closureCount = h("span", { class: "hint", "aria-live": "polite" });
  const closure = h("div", { dataset: { testid: "host-closure" } });
  const history = h("div", { dataset: { testid: "host-history" } });
  const historyShown = h("span", { class: "hint" });
  const view = {
    services,
    search,
    closureCount,
    closure,
    history,
    historyShown,
    historyPage: 0,
    packages: [],
  };
  search.addEventListener("input", () => filterClosure(view));
  const newer = h("button", { type: "button", class: "link", dataset: { step: "-1" } }, "newer");
  const older = h("button", { type: "button", class: "link", dataset: { step: "1" } }, "older");
  for (const button of [newer, older]) {
    button.addEventListener("click", async () => {
      view.historyPage = Math.max(0, view.historyPage + Number(button.dataset.step));
      try {
        await view.load?.();
      } catch (error) {
        view.historyShown.textContent =
          error instanceof ApiError ? error.describe() : String(error);
      }
    });
  }
  Object.assign(view, { newer, older });
  view.nodes = [
    panel(
      { id: "host-panel", title: `${host} in ${env}`, hint: "its services and their health" },
      h("p", {}, "environment ", link(envHref(env), env)),
      services,
    ),
    panel(
      { id: "host-closure-panel", title: "Packages", hint: "in the closures of what it runs" },
      h(
        "p",
        { class: "closure-search" },
        h("label", {}, "search packages ", search),
        " ",
        closureCount,
      ),
      closure,
    ),
    panel(
      { id: "host-history-panel", title: "History", hint: "newest first" },
      history,
      h("p", { class: "pager" }, newer, " ", historyShown, " ", older),
    ),
  ];
  return view;
}

/**
 * A page of the host's history, newest first. The API lists it oldest first: the total
 * comes with the first answer, then the page is cut from the end and reversed.
 */
async function historyPage(path, env, page) {
  const first = await getJSON(`${path}/history`, { env, limit: 1, offset: 0 });
  const total = first.total;
  const end = Math.max(0, total - page * HISTORY_PAGE);
  const start = Math.max(0, end - HISTORY_PAGE);
  if (end === 0) return { total, page, start, end, items: [] };
  const answer = await getJSON(`${path}/history`, { env, limit: end - start, offset: start });
  return { total: answer.total, page, start, end, items: answer.items.slice().reverse() };
}

function drawServices(view, env, host, placements, refused) {
  if (refused) {
    view.services.replaceChildren(h("p", { class: "hint" }, `${refused.message}.`));
    return;
  }
  const rows = placements
    .slice()
    .sort((a, b) => a.service.localeCompare(b.service))
    .map((p) => {
      const where = { generation: p.generation, host };
      return h(
        "tr",
        { dataset: { service: p.service, health: p.health ?? "" } },
        h("td", {}, serviceLink(env, p.service, where)),
        h("td", {}, healthBadge(p.health)),
        h(
          "td",
          { class: "build" },
          buildLink(env, p.build_id, where),
          p.version ? [" ", h("span", { class: "build-version" }, p.version)] : null,
        ),
        h("td", { class: "num" }, generationLink(env, p.generation, String(p.generation))),
        h("td", { class: "time" }, formatTime(p.since)),
        h(
          "td",
          {},
          (p.depends_on || []).length
            ? p.depends_on.map((s, i) => [i ? ", " : "", serviceLink(env, s, where)])
            : "–",
        ),
      );
    });
  view.services.replaceChildren(
    scrollTable(
      "services",
      ["service", "health", "build", ["gen", "num"], "since (UTC)", "depends on"],
      rows,
      { class: "host-services", dataset: { testid: "services" } },
    ),
  );
}

/** Every package of the host's closures, once per version, with the services holding it. */
function drawClosure(view, env, placements) {
  const packages = new Map();
  for (const p of placements) {
    for (const component of p.closure || []) {
      const key = `${component.name}\u0000${component.version}`;
      if (!packages.has(key)) packages.set(key, { ...component, services: [] });
      packages.get(key).services.push(p);
    }
  }
  view.packages = [...packages.values()].sort(
    (a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version),
  );
  const rows = view.packages.map((component) =>
    h(
      "tr",
      { dataset: { name: component.name, version: component.version } },
      h("td", {}, packageLink(component.name, { env }, component.name, { class: "mono" })),
      h(
        "td",
        { class: "mono", title: component.store_path ?? component.purl ?? "" },
        packageLink(component.name, { env, range: `==${component.version}` }, component.version),
      ),
      h(
        "td",
        {},
        component.services.map((p, i) => [
          i ? " " : "",
          serviceLink(env, p.service, { generation: p.generation, host: p.host }),
        ]),
      ),
    ),
  );
  view.closureRows = rows;
  view.closure.replaceChildren(
    scrollTable("packages", ["package", "version", "in services"], rows, {
      class: "host-closure",
      dataset: { testid: "closure" },
    }),
  );
  filterClosure(view);
}

/** Show the packages whose name holds the search box's text (what was typed is kept). */
function filterClosure(view) {
  const wanted = view.search.value.trim().toLowerCase();
  let shown = 0;
  for (const [i, component] of view.packages.entries()) {
    const match = !wanted || component.name.toLowerCase().includes(wanted);
    view.closureRows[i].hidden = !match;
    if (match) shown += 1;
  }
  view.closureCount.textContent = wanted
    ? `${formatCount(shown)} of ${plural(view.packages.length, "package")} match`
    : plural(view.packages.length, "package");
}

function drawHistory(view, env, history) {
  const rows = history.items.map((entry) => {
    const where = { generation: entry.generation, host: entry.host };
    return h(
      "tr",
      { dataset: { position: entry.position, kind: entry.kind } },
      h("td", { class: "time" }, formatTime(entry.occurred_at)),
      h("td", {}, entry.kind.replaceAll("_", " ")),
      h("td", {}, serviceLink(env, entry.service, where)),
      h("td", { class: "build" }, buildLink(env, entry.build_id, where)),
      h("td", { class: "num" }, generationLink(env, entry.generation, String(entry.generation))),
      h("td", {}, entry.detail || "–"),
      h("td", {}, entry.actor),
    );
  });
  view.history.replaceChildren(
    rows.length
      ? scrollTable(
          "history",
          ["time (UTC)", "what", "service", "build", ["gen", "num"], "detail", "by"],
          rows,
          { class: "host-history", dataset: { testid: "history" } },
        )
      : h("p", { class: "hint" }, "Nothing recorded."),
  );
  const newest = history.total - history.end + 1;
  const oldest = history.total - history.start;
  view.historyShown.textContent = history.items.length
    ? `events ${formatCount(newest)}–${formatCount(oldest)} of ` +
      `${formatCount(history.total)}, newest first`
    : "";
  view.newer.hidden = history.page === 0;
  view.older.hidden = history.start === 0;
}
