// Plain SVG drawing for the charts (no library): elements made with createElementNS, time
// and count axes, stacked step areas, step lines, bars, a legend and the "as a table"
// block that holds every number drawn. Times are epoch milliseconds here and are shown
// as ISO 8601 UTC (dom.js's formatTime), never in the browser's locale.

import { formatCount, formatTime, h } from "../dom.js";

const NS = "http://www.w3.org/2000/svg";
const HEIGHT = 250;
const MARGIN = { top: 24, right: 16, bottom: 50, left: 48 };
const MINUTE = 60_000;
const DAY = 86_400_000;
/** Tick spacings a time axis picks from: the smallest that keeps labels apart. */
const TIME_STEPS = [1, 5, 15, 30, 60, 180, 360, 720].map((m) => m * MINUTE)
  .concat([1, 2, 7, 14, 30, 61, 91, 182, 365].map((d) => d * DAY));
/** Series styles (charts.css): a colour and a fill pattern each, so colour is never
 * the only thing telling two series apart. */
export const STYLES = 8;
let drawn = 0;

/** An SVG element: svg("rect", {x: 1, class: "bar"}, child…); null attributes left out. */
export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/** "2026-01-14" when the axis spans days, else "2026-01-14T18:10Z". */
function tickLabel(ms, step) {
  const text = formatTime(new Date(ms).toISOString());
  return step >= DAY ? text.slice(0, 10) : `${text.slice(0, 16)}Z`;
}

/**
 * A chart frame sized to `container` (its width, in CSS pixels, becomes the viewBox's, so
 * text keeps its size at 390 px as at 1,600): x is time [from, to], y is [0, top].
 * `ticks` (ms) replaces the time axis's own (a bar chart labels its buckets' starts).
 * The <svg> tells its scale's top in data-y-top (for the tests and anyone reading it).
 * Returns {root, plot, x(ms), y(v), width, height, fill(series index)}.
 */
export function frame(container, { from, to, top, label, yLabel, integer = true, width: wanted, ticks }) {
  const width = Math.max(280, Math.round(wanted || container.clientWidth || 600));
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const span = Math.max(to - from, 1);
  const yTop = niceTop(top, integer);
  const x = (ms) => MARGIN.left + ((ms - from) / span) * plotW;
  const y = (v) => MARGIN.top + plotH - (v / yTop) * plotH;
  const id = `chart-${++drawn}`;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${HEIGHT}`, width: "100%", role: "img", "aria-label": label,
    class: "chart-svg", preserveAspectRatio: "xMinYMin meet", "data-y-top": yTop,
  });
  root.append(svg("defs", {}, [...Array(STYLES).keys()].map((i) => pattern(`${id}-p${i}`, i))));
  const axes = svg("g", { class: "axes", "aria-hidden": "true" });
  let shown = 0;
  for (const [t, text] of timeTicks(from, to, plotW, ticks)) {
    const half = text.length * 3.3; // a label's half width at 11 px: kept inside the drawing
    if (x(t) - half < 0 || x(t) + half > width) continue;
    axes.append(svg("line", { class: "tick", x1: x(t), x2: x(t), y1: MARGIN.top, y2: MARGIN.top + plotH }));
    axes.append(svg("text", { x: x(t), y: HEIGHT - MARGIN.bottom + 16, class: "tick-label", "text-anchor": "middle" },
      text));
    shown += 1;
  }
  if (shown < 2) { // too narrow for round ticks: the first and last moments, at the edges
    const grain = span >= 2 * DAY ? DAY : MINUTE;
    axes.append(svg("text", { x: MARGIN.left, y: HEIGHT - MARGIN.bottom + 28, class: "tick-label" },
      tickLabel(from, grain)));
    axes.append(svg("text", { x: width - MARGIN.right, y: HEIGHT - MARGIN.bottom + 28, class: "tick-label",
      "text-anchor": "end" }, tickLabel(to, grain)));
  }
  for (const v of yTicks(yTop, integer)) {
    axes.append(svg("line", { class: "grid", x1: MARGIN.left, x2: width - MARGIN.right, y1: y(v), y2: y(v) }));
    axes.append(svg("text", { x: MARGIN.left - 6, y: y(v) + 4, class: "tick-label", "text-anchor": "end" },
      integer ? formatCount(v) : String(v)));
  }
  axes.append(svg("text", { x: width - MARGIN.right, y: HEIGHT - 4, class: "axis-title", "text-anchor": "end" },
    "time (UTC)"));
  if (yLabel) axes.append(svg("text", { x: MARGIN.left + 4, y: MARGIN.top - 10, class: "axis-title" }, yLabel));
  axes.append(svg("line", { class: "axis", x1: MARGIN.left, x2: width - MARGIN.right,
    y1: MARGIN.top + plotH, y2: MARGIN.top + plotH }));
  const plot = svg("g", { class: "plot" });
  root.append(axes, plot);
  return { root, plot, x, y, width, height: HEIGHT, fill: (i) => `url(#${id}-p${i % STYLES})` };
}

/** [ms, label] of the time axis: `wanted` thinned out, or round steps (weeks from
 * Mondays), as many as fit: labels need ~85 px as dates, ~125 px with times. */
function timeTicks(from, to, plotW, wanted) {
  const span = Math.max(to - from, 1);
  if (wanted) {
    const room = wanted.length > 1 ? ((wanted[1] - wanted[0]) / span) * plotW : plotW;
    const every = Math.max(1, Math.ceil(85 / Math.max(room, 1)));
    return wanted.filter((_, i) => i % every === 0).map((t) => [t, tickLabel(t, DAY)]);
  }
  const step = TIME_STEPS.find((s) => (s / span) * plotW >= (s >= DAY ? 85 : 125))
    || DAY * 365 * Math.ceil((span / DAY / 365) * (85 / plotW));
  const origin = step % (7 * DAY) === 0 ? 4 * DAY : 0; // 1970-01-01 was a Thursday
  const ticks = [];
  for (let t = Math.ceil((from - origin) / step) * step + origin; t <= to; t += step) {
    ticks.push([t, tickLabel(t, step)]);
  }
  return ticks;
}

function pattern(id, i) {
  const marks = [
    [],
    [svg("path", { d: "M0,6 L6,0", class: "mark" })],
    [svg("circle", { cx: 3, cy: 3, r: 1.2, class: "mark dot" })],
    [svg("path", { d: "M0,3 L6,3", class: "mark" })],
    [svg("path", { d: "M0,0 L6,6", class: "mark" })],
    [svg("path", { d: "M3,0 L3,6", class: "mark" })],
    [svg("path", { d: "M0,6 L6,0 M0,0 L6,6", class: "mark" })],
    [svg("rect", { x: 1, y: 1, width: 2, height: 2, class: "mark dot" })],
  ][i];
  return svg("pattern", { id, width: 6, height: 6, patternUnits: "userSpaceOnUse", class: `series-${i}` },
    svg("rect", { width: 6, height: 6, class: "ground" }), ...marks);
}

function niceTop(top, integer) {
  if (!(top > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(top));
  const nice = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((v) => v >= top);
  return integer ? Math.max(1, Math.ceil(nice)) : nice;
}

function yTicks(top, integer) {
  const rough = top / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const nice = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((v) => v >= rough);
  const step = integer ? Math.max(1, Math.ceil(nice)) : nice;
  const ticks = [];
  for (let v = 0; v <= top + step / 1000; v += step) ticks.push(Number(v.toFixed(6)));
  return ticks;
}

/** A step outline over `moments` (the last step running to `to`), as SVG path steps. */
function stepPath(chart, moments, values, to, move = "M") {
  let d = "";
  moments.forEach((start, i) => {
    const end = i + 1 < moments.length ? moments[i + 1] : to;
    const yv = chart.y(values[i]).toFixed(1);
    d += `${i ? "L" : move}${chart.x(start).toFixed(1)},${yv}L${chart.x(end).toFixed(1)},${yv}`;
  });
  return d;
}

/**
 * Stacked step areas: `moments` (ms, ascending) and `series` [{key, label, values[]}]
 * (values[i] holds from moments[i] to moments[i + 1], the last to `to`). One filled path
 * per series (thousands of changes stay a few elements), named by data-series; the
 * numbers themselves are in the chart's table.
 */
export function stackedSteps(chart, moments, series, to) {
  const base = new Array(moments.length).fill(0);
  series.forEach((s, k) => {
    const top = base.map((b, i) => b + s.values[i]);
    const back = [...moments].reverse();
    const under = [...base].reverse();
    // Along the top left to right, then back along the series below, right to left.
    let d = stepPath(chart, moments, top, to);
    back.forEach((start, i) => {
      const end = i ? back[i - 1] : to;
      const yv = chart.y(under[i]).toFixed(1);
      d += `L${chart.x(end).toFixed(1)},${yv}L${chart.x(start).toFixed(1)},${yv}`;
    });
    chart.plot.append(svg("path", { d: `${d}Z`, fill: chart.fill(k), class: `band series-${k % STYLES}`,
      "data-series": s.key, "data-last": s.values[s.values.length - 1] }, svg("title", {}, s.label)));
    top.forEach((v, i) => { base[i] = v; });
  });
  labelEnds(chart, series.map((s, k) => ({ ...s, k })), (s) => {
    const i = moments.length - 1;
    const below = series.slice(0, s.k).reduce((sum, t) => sum + t.values[i], 0);
    return s.values[i] > 0 ? below + s.values[i] / 2 : null;
  });
}

/** A step line per series ({key, label, values[]} over `moments`), dashed per series. */
export function stepLines(chart, moments, series, to) {
  series.forEach((s, k) => {
    chart.plot.append(svg("path", { d: stepPath(chart, moments, s.values, to), class: `line series-${k % STYLES}`,
      "data-series": s.key, "data-last": s.values[s.values.length - 1] }));
  });
  labelEnds(chart, series.map((s, k) => ({ ...s, k })), (s) => s.values[s.values.length - 1]);
}

/** Each series' name written at the right end of its line or band; names that would
 * overlap (lines ending at the same count) share one label: "planned, activated". */
function labelEnds(chart, series, valueOf) {
  let last = null;
  const placed = series.map((s) => ({ s, v: valueOf(s) })).filter((p) => p.v !== null && p.v !== undefined)
    .map((p) => ({ ...p, yv: chart.y(p.v) })).sort((a, b) => b.yv - a.yv);
  for (const { s, yv } of placed) {
    if (last && Math.abs(last.y - yv) < 12) {
      last.node.textContent += `, ${s.label}`;
      continue;
    }
    const node = svg("text", { x: chart.width - MARGIN.right - 2, y: yv + 4, "text-anchor": "end",
      class: `direct-label series-${s.k % STYLES}` }, s.label);
    chart.plot.append(node);
    last = { y: yv, node };
  }
}

/** The legend: a swatch with the series' pattern (or dash) and its name. */
export function legend(chart, series, kind = "band") {
  return h("ul", { class: "chart-legend" }, series.map((s, k) => {
    const swatch = svg("svg", { width: 22, height: 12, "aria-hidden": "true", class: "swatch" },
      kind === "band"
        ? svg("rect", { width: 22, height: 12, fill: chart.fill(k), class: `band series-${k % STYLES}` })
        : svg("path", { d: "M1,6 L21,6", class: `line series-${k % STYLES}` }));
    // The swatch's pattern lives in the chart's <svg>: referenced by URL, it works anywhere.
    return h("li", {}, swatch, s.link || s.label);
  }));
}

/** The same numbers as a table, folded away: [header…] and rows of cells (text or nodes),
 * each row's `data` becoming data-* attributes for the tests and for anyone copying. */
export function asTable(caption, headers, rows) {
  return h("details", { class: "chart-table" },
    h("summary", {}, "as a table"),
    h("div", { class: "scroll", tabindex: "0", "aria-label": `${caption} (scrolls)` },
      h("table", {},
        h("caption", {}, caption),
        h("thead", {}, h("tr", {}, headers.map((t, i) => h("th", { class: i ? "num" : null, scope: "col" }, t)))),
        h("tbody", {}, rows.map(({ cells, data }) =>
          h("tr", { dataset: data }, cells.map((c, i) => (i ? h("td", { class: "num" }, c) : h("th", { scope: "row" }, c)))))))));
}

/** A chart's box: a figure with its caption, the drawing, the legend, a note and the table. */
export function figure(container, { caption, chart, legendNode, table, name, note }) {
  container.replaceChildren(h("figure", { class: "chart", dataset: { chart: name } },
    h("figcaption", { class: "chart-caption" }, caption), chart ? chart.root : null, legendNode,
    note ? h("p", { class: "hint chart-note" }, note) : null, table));
}

/** Epoch ms of an ISO time from the API. */
export const ms = (iso) => Date.parse(iso);
