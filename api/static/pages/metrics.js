// #/metrics?env=&service=: delivery (DORA) figures per env and service (GET api/metrics)
// as a table, and per service its figures over time (charts.js's renderDoraOverTime,
// drawn by dom.js's drawChart: a chart that is missing or fails says so in its place).
// A service's name opens the page for it alone.

import { getJSON } from "../api.js";
import { drawChart, formatCount, h, keptView, panel, plural, scrollTable } from "../dom.js";
import { envHref, href, link } from "../router.js";
import { envOptions, filterForm } from "./vulns.js";

export async function render(container, route, context) {
  const env = route.query.get("env") || "";
  const service = route.query.get("service") || "";
  const view = keptView(container, route.hash, () => build(route, context));
  const all = await getJSON("api/metrics", { env });
  if (!context.isCurrent()) return;
  const rows = service ? all.filter((row) => row.service === service) : all;
  view.table.querySelector("tbody").replaceChildren(...rows.map(metricsRow));
  view.count.textContent = `${plural(rows.length, "service")}${service ? ` named ${service}` : ""}`;
  view.empty.hidden = rows.length > 0;
  // The charts are drawn once per page view: a redraw for the live stream refreshes the
  // table; the pictures (weeks of history) keep what they showed.
  if (view.drawn) return;
  view.drawn = true;
  view.charts.replaceChildren(
    ...rows.map((row) => {
      const holder = h("div", { class: "chart-holder" });
      const box = h(
        "section",
        { class: "dora-chart", dataset: { env: row.env, service: row.service }, "aria-label": `${row.service} in ${row.env}` },
        h("h3", {}, `${row.service} · ${row.env}`),
        holder,
      );
      drawChart(holder, "renderDoraOverTime", { env: row.env, service: row.service });
      return box;
    }),
  );
}

function build(route, context) {
  const form = filterForm(route, [{ name: "env", label: "env", options: envOptions(context.envs) }], "metrics-filter");
  const table = scrollTable(
    "delivery metrics",
    ["env", "service", ["deployments", "num"], ["per day", "num"], ["lead time (h)", "num"], ["change failure rate", "num"], ["time to restore (h)", "num"]],
    [],
    { dataset: { testid: "metrics-table" } },
  );
  const count = h("span", { class: "hint", dataset: { testid: "metrics-count" } });
  const empty = h("p", { class: "hint", hidden: true }, "No deployment recorded.");
  const figures = panel(
    { id: "metrics-panel", title: "Delivery metrics", hint: "per env and service (DORA)" },
    form,
    table,
    empty,
  );
  figures.querySelector(".panel-head").append(count);
  const charts = h("div", { class: "dora-charts", dataset: { testid: "dora-charts" } });
  const over = panel({ id: "metrics-charts-panel", title: "Over time", hint: "per service" }, charts);
  return { nodes: [figures, over], table, count, empty, charts, drawn: false };
}

const number = (value, digits = 1) =>
  value === null || value === undefined ? "–" : Number(value).toFixed(digits);

function metricsRow(row) {
  const rate = row.change_failure_rate;
  return h(
    "tr",
    { dataset: { env: row.env, service: row.service, deployments: row.deployments } },
    h("td", {}, link(envHref(row.env), row.env)),
    h("td", {}, link(href("metrics", [], { env: row.env, service: row.service }), row.service, { class: "svc" })),
    h("td", { class: "num" }, formatCount(row.deployments)),
    h("td", { class: "num" }, number(row.deployments_per_day, 2)),
    h("td", { class: "num" }, number(row.lead_time_hours)),
    h("td", { class: "num" }, rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(1)} %`),
    h("td", { class: "num" }, number(row.time_to_restore_hours)),
  );
}
