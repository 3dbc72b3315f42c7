// #/vulns?env=&severity=: every advisory affecting what runs, most severe first, then by
// hosts exposed (GET api/vulns); each links to its advisory's page. The filters are in
// the URL, so a filtered list can be shared. Also the filter form the other ops pages
// (alerts, drift, metrics, advisory) use, `filterForm`, and their card-ready `cell`.

import { getJSON } from "../api.js";
import { formatCount, h, keptView, panel, scrollTable } from "../dom.js";
import { advisoryHref, href, link, packageLink } from "../router.js";

export const SEVERITIES = ["critical", "high", "medium", "low"];
/** Never colour alone: a shape and the word. */
const SEVERITY_SHAPES = { critical: "■", high: "▲", medium: "◆", low: "▽", unknown: "○" };

/** A severity as a shape and its word (and the score when known): "▲ high 7.5". */
export function severityBadge(severity, score = null) {
  const name = SEVERITY_SHAPES[severity] ? severity : "unknown";
  const text = severity ? `${severity}${score !== null && score !== undefined ? ` ${score}` : ""}` : "unknown";
  return h(
    "span",
    { class: `severity sev-${name}`, dataset: { severity: name } },
    h("span", { class: "shape", "aria-hidden": "true" }, SEVERITY_SHAPES[name]),
    " ",
    text,
  );
}

/**
 * A form of labelled selects whose values live in the route's query: changing one opens
 * the same route with the new query (so the filter is in the URL, and survives redraws).
 * `fields`: [{name, label, options: [[value, text], …]}]; `route`: the current route.
 */
export function filterForm(route, fields, testid) {
  const selects = fields.map((field) =>
    h(
      "select",
      { id: `${testid}-${field.name}`, name: field.name, dataset: { testid: `${testid}-${field.name}` } },
      field.options.map(([value, text]) =>
        h("option", { value, selected: (route.query.get(field.name) || "") === value }, text),
      ),
    ),
  );
  const form = h(
    "form",
    { class: "ops-filters", dataset: { testid }, role: "search" },
    fields.map((field, i) => h("label", { for: `${testid}-${field.name}` }, `${field.label} `, selects[i])),
  );
  form.addEventListener("change", () => {
    const query = Object.fromEntries(selects.map((select) => [select.name, select.value]));
    window.location.hash = href(route.name, Object.values(route.params), query);
  });
  form.addEventListener("submit", (event) => event.preventDefault());
  return form;
}

/** A table cell labelled for the narrow layout, where each row is a card (ops.css's
 * `ops-cards`): `label` shows before its value there (null: the value says it). */
export const cell = (label, attributes, ...children) =>
  h("td", label ? { ...attributes, "data-label": label } : attributes, ...children);

/** The env filter's options: every env, or any. */
export function envOptions(envs) {
  return [["", "any"], ...envs.map((env) => [env, env])];
}

export async function render(container, route, context) {
  const env = route.query.get("env") || "";
  const severity = route.query.get("severity") || "";
  const view = keptView(container, route.hash, () => build(route, context));
  const rows = await getJSON("api/vulns", { env, min_severity: severity });
  if (!context.isCurrent()) return;
  const scope = [env ? `in ${env}` : "in every env", severity ? `at least ${severity}` : null];
  const noun = rows.length === 1 ? "advisory" : "advisories";
  view.count.textContent = `${formatCount(rows.length)} ${noun} ${scope.filter(Boolean).join(", ")}`;
  view.table.querySelector("tbody").replaceChildren(...rows.map((row, i) => vulnRow(row, i + 1, env)));
  view.empty.hidden = rows.length > 0;
}

function build(route, context) {
  const form = filterForm(
    route,
    [
      { name: "env", label: "env", options: envOptions(context.envs) },
      {
        name: "severity",
        label: "severity at least",
        options: [["", "any"], ...SEVERITIES.map((s) => [s, s])],
      },
    ],
    "vulns-filter",
  );
  const table = scrollTable(
    "advisories",
    [["#", "num"], "advisory", "severity", ["hosts", "num"], ["services", "num"], "affected packages", "summary"],
    [],
    { class: "ops-cards", dataset: { testid: "vulns-table" } },
  );
  table.classList.add("ops-cards-scroll");
  const count = h("span", { class: "hint", dataset: { testid: "vulns-count" } });
  const empty = h("p", { class: "hint", hidden: true }, "No advisory affects what runs.");
  const list = panel(
    { id: "vulns-panel", title: "Advisories affecting what runs", hint: "most severe first, then by hosts exposed" },
    form,
    table,
    empty,
  );
  list.querySelector(".panel-head").append(count);
  return { nodes: [list], table, count, empty };
}

function vulnRow(row, rank, env) {
  const query = env ? { env } : {};
  return h(
    "tr",
    { dataset: { id: row.id, hosts: row.hosts, services: row.services, severity: row.severity || "unknown" } },
    cell(null, { class: "num" }, `${rank}.`),
    cell(
      null,
      { class: "nowrap" },
      link(advisoryHref(row.id, query), row.id, { class: "mono advisory-link" }),
      row.aliases.length ? h("div", { class: "hint" }, row.aliases.join(", ")) : null,
    ),
    cell(null, { class: "nowrap" }, severityBadge(row.severity, row.score)),
    cell("hosts", { class: "num" }, formatCount(row.hosts)),
    cell("services", { class: "num" }, formatCount(row.services)),
    cell(
      null,
      { class: "packages" },
      row.packages.map((p, i) => [
        i ? ", " : "",
        packageLink(p.name, query),
        ` ${p.version}`,
        p.fixed ? h("span", { class: "hint" }, ` (fixed in ${p.fixed})`) : null,
      ]),
    ),
    cell(null, { class: "summary" }, row.summary),
  );
}
