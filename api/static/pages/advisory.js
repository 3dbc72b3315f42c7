// #/advisory/ID?env=: which hosts and services an advisory (or any alias of it) exposes
// (GET api/exposure): its totals, the placements affected now, the windows per host, and
// its exposure over time (charts.js's renderExposureOverTime, through dom.js's drawChart:
// a chart that is missing or fails says so in its place). Hosts, services, builds and
// packages are links. An advisory the ledger does not hold is the API's 404, on the page.

import { getJSON } from "../api.js";
import { drawChart, formatCount, formatTime, h, keptView, panel, plural, scrollTable } from "../dom.js";
import { buildLink, envHref, hostLink, link, packageLink, serviceLink } from "../router.js";
import { cell, envOptions, filterForm } from "./vulns.js";

export async function render(container, route, context) {
  const { id } = route.params;
  const env = route.query.get("env") || "";
  // Asked before the page is built: an unknown advisory shows the API's message alone.
  const answer = await getJSON("api/exposure", { id, env });
  if (!context.isCurrent()) return;
  const view = keptView(container, route.hash, () => build(route, context));
  drawTotals(view.totals, answer);
  const query = env ? { env } : {};
  view.affected.querySelector("tbody").replaceChildren(...answer.affected.map((row) => affectedRow(row, query)));
  view.affectedCount.textContent = `${plural(answer.affected.length, "placement")} affected at ${formatTime(answer.horizon)}`;
  view.affectedEmpty.hidden = answer.affected.length > 0;
  view.windows.querySelector("tbody").replaceChildren(...answer.hosts.map(windowRow));
  view.windowsCount.textContent = `${plural(answer.hosts.length, "host")} exposed at some time`;
  view.windowsEmpty.hidden = answer.hosts.length > 0;
  if (!view.drawn) {
    view.drawn = true;
    drawChart(view.chart, "renderExposureOverTime", { id, env });
  }
}

function build(route, context) {
  const { id } = route.params;
  const form = filterForm(route, [{ name: "env", label: "env", options: envOptions(context.envs) }], "advisory-filter");
  const totals = h("dl", { class: "totals", dataset: { testid: "exposure-totals" } });
  const summary = panel({ id: "advisory-panel", title: `Advisory ${id}`, hint: "exposure from the ledger's facts" }, form, totals);
  const chart = h("div", { class: "chart-holder", dataset: { testid: "exposure-chart" } });
  const over = panel({ id: "advisory-chart-panel", title: "Hosts exposed over time" }, chart);
  const affected = scrollTable(
    "affected placements",
    ["env", "host", "service", "build", "package", "version", "fixed in", "advisories"],
    [],
    { class: "ops-cards", dataset: { testid: "affected-table" } },
  );
  affected.classList.add("ops-cards-scroll");
  const affectedCount = h("span", { class: "hint", dataset: { testid: "affected-count" } });
  const affectedEmpty = h("p", { class: "hint", hidden: true }, "Nothing affected runs now.");
  const now = panel({ id: "affected-panel", title: "Affected now" }, affected, affectedEmpty);
  now.querySelector(".panel-head").append(affectedCount);
  const windows = scrollTable(
    "exposure windows per host",
    ["env", "host", "exposed (UTC, from – to)", ["hours", "num"]],
    [],
    { class: "ops-cards", dataset: { testid: "windows-table" } },
  );
  windows.classList.add("ops-cards-scroll");
  const windowsCount = h("span", { class: "hint", dataset: { testid: "windows-count" } });
  const windowsEmpty = h("p", { class: "hint", hidden: true }, "No host was ever exposed.");
  const perHost = panel({ id: "windows-panel", title: "Windows per host" }, windows, windowsEmpty);
  perHost.querySelector(".panel-head").append(windowsCount);
  return {
    nodes: [summary, over, now, perHost],
    totals,
    chart,
    affected,
    affectedCount,
    affectedEmpty,
    windows,
    windowsCount,
    windowsEmpty,
    drawn: false,
  };
}

const hours = (value) => (value === null || value === undefined ? "–" : Number(value).toFixed(1));

function drawTotals(totals, answer) {
  const items = [
    ["ids", answer.ids.join(", "), "ids"],
    ["hosts exposed", formatCount(answer.hosts_exposed), "hosts_exposed"],
    ["services exposed", formatCount(answer.services_exposed), "services_exposed"],
    ["host-hours", hours(answer.host_hours), "host_hours"],
    ["host-hours after published", hours(answer.host_hours_after_published), "host_hours_after_published"],
    ["host-hours after recorded", hours(answer.host_hours_after_recorded), "host_hours_after_recorded"],
    ["published (UTC)", formatTime(answer.published), "published"],
    ["recorded (UTC)", formatTime(answer.recorded), "recorded"],
    ["as of (UTC)", formatTime(answer.horizon), "horizon"],
    answer.withdrawn.length ? ["withdrawn", answer.withdrawn.join(", "), "withdrawn"] : null,
    answer.unmatched.length ? ["not matched to packages", answer.unmatched.join(", "), "unmatched"] : null,
  ].filter(Boolean);
  totals.replaceChildren(
    ...items.map(([term, value, key]) =>
      h("div", { dataset: { total: key } }, h("dt", {}, term), h("dd", {}, value)),
    ),
  );
}

function affectedRow(row, query) {
  const where = { host: row.host };
  return h(
    "tr",
    { dataset: { env: row.env, host: row.host, service: row.service } },
    cell(null, {}, link(envHref(row.env), row.env)),
    cell(null, { class: "nowrap" }, hostLink(row.env, row.host)),
    cell(null, {}, serviceLink(row.env, row.service, where)),
    cell("build", {}, buildLink(row.env, row.build_id, where)),
    cell(null, {}, packageLink(row.name, { ...query, env: row.env })),
    cell(null, { class: "mono" }, row.version),
    cell("fixed in", { class: "mono" }, row.fixed || "no fixed version known"),
    cell(null, { class: "mono" }, row.advisories.join(", ")),
  );
}

function windowRow(row) {
  return h(
    "tr",
    { dataset: { env: row.env, host: row.host, first: row.first_exposed } },
    cell(null, {}, link(envHref(row.env), row.env)),
    cell(null, { class: "nowrap" }, hostLink(row.env, row.host)),
    cell(
      null,
      { class: "time" },
      row.intervals.map(([from, to], i) => [i ? h("br") : null, `${formatTime(from)} – ${to ? formatTime(to) : "still exposed"}`]),
    ),
    cell("hours", { class: "num" }, hours(row.hours)),
  );
}
