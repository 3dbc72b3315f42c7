// Pictures over time, in plain SVG (charts/svg.js): a package's versions, a generation's
// rollout, the DORA figures, an advisory's exposure. Each renderer fetches its own data,
// draws into the empty <div> it is given (a figure: caption, chart, legend, and the same
// numbers "as a table"), and throws the ApiError of a refused request.

import { getJSON } from "./api.js";
import { formatCount, formatTime, h } from "./dom.js";
import { envHref, generationHref, link, packageHref } from "./router.js";
import { asTable, figure, frame, legend, ms, stackedSteps, stepLines, svg } from "./charts/svg.js";

const date = (iso) => formatTime(iso).slice(0, 10);
/** At most this many moments are drawn and tabled (a fleet's rollout changes tens of
 * thousands of times): beyond, the last change of each UTC second, minute, hour… */
const MAX_ROWS = 400;
const GRAINS = [[1_000, "second"], [60_000, "minute"], [300_000, "5 minutes"], [900_000, "15 minutes"],
  [3_600_000, "hour"], [21_600_000, "6 hours"], [86_400_000, "day"], [604_800_000, "week"],
  [2_592_000_000, "30 days"], [31_536_000_000, "365 days"]];

/** The indexes of `moments` (ascending ms) to draw and table: every one, or the last of
 * each UTC grain (the finest keeping at most MAX_ROWS), and the grain's name. Each kept
 * moment's values are exact: the picture passes through every kept change. */
function thin(moments) {
  if (moments.length <= MAX_ROWS) return { keep: moments.map((_, i) => i), grain: null };
  const [size, name] = GRAINS.find(([g]) => new Set(moments.map((m) => Math.floor(m / g))).size <= MAX_ROWS)
    || GRAINS[GRAINS.length - 1];
  const keep = [];
  moments.forEach((m, i) => {
    if (i + 1 === moments.length || Math.floor(moments[i + 1] / size) !== Math.floor(m / size)) keep.push(i);
  });
  return { keep, grain: name };
}

function thinNote(grain, shown, total) {
  return grain ? `Drawn and tabled at the last change of each UTC ${grain}: ${formatCount(shown)} of ${formatCount(total)} changes.` : null;
}

/** The moments of a list of changes {at, …} and, per series key, its value at each. */
function steps(changes, keyOf, valueOf, keys) {
  const moments = [...new Set(changes.map((c) => ms(c.at)))].sort((a, b) => a - b);
  const index = new Map(moments.map((m, i) => [m, i]));
  const values = new Map(keys.map((k) => [k, new Array(moments.length).fill(null)]));
  for (const c of changes) values.get(keyOf(c))[index.get(ms(c.at))] = valueOf(c);
  for (const row of values.values()) {
    for (let i = 0; i < row.length; i += 1) if (row[i] === null) row[i] = i ? row[i - 1] : 0;
  }
  return { moments, values };
}

/** The right edge: a little after the last change, so its state shows as a band. */
function edge(moments) {
  const first = moments[0];
  const last = moments[moments.length - 1];
  return last + Math.max((last - first) * 0.08, 3_600_000);
}

/** Series of stacked hosts per key, with the table of every change. */
function drawStacked(container, { name, caption, label, yLabel, changes, keys, labelOf, linkOf, tableCaption, until, note }) {
  if (!changes.length) {
    figure(container, { name, caption });
    return;
  }
  const all = steps(changes, (c) => c.key, (c) => c.hosts, keys);
  const { keep, grain } = thin(all.moments);
  const moments = keep.map((i) => all.moments[i]);
  const to = until && until > moments[moments.length - 1] ? until : edge(moments);
  const series = keys.map((k) => ({ key: k, label: labelOf(k), link: linkOf(k), values: keep.map((i) => all.values.get(k)[i]) }));
  const top = Math.max(...moments.map((_, i) => series.reduce((sum, s) => sum + s.values[i], 0)));
  const latest = series.map((s) => `${s.label} ${formatCount(s.values[s.values.length - 1])}`).join(", ");
  const summary = `${label} From ${formatTime(new Date(moments[0]).toISOString())}; at the last change (${
    formatTime(new Date(moments[moments.length - 1]).toISOString())}): ${latest}.`;
  const chart = frame(container, { from: moments[0], to, top, label: summary, yLabel });
  stackedSteps(chart, moments, series, to);
  const rows = moments.map((m, i) => ({
    cells: [formatTime(new Date(m).toISOString()), ...series.map((s) => formatCount(s.values[i]))],
    data: { at: new Date(m).toISOString(), ...Object.fromEntries(series.map((s, k) => [`s${k}`, s.values[i]])) },
  }));
  const table = asTable(tableCaption, ["from (UTC)", ...series.map((s) => s.label)], rows);
  table.querySelector("table").dataset.series = JSON.stringify(keys);
  const notes = [note, thinNote(grain, moments.length, all.moments.length)].filter(Boolean).join(" ");
  figure(container, { name, caption, chart, legendNode: legend(chart, series), table, note: notes || null });
}

/** A package's hosts per version over time, stacked; the caption names every version no
 * longer running and when it was last seen, per env. */
export async function renderVersionsOverTime(container, { name, env } = {}) {
  const answer = await getJSON("api/where/timeline", { name, env });
  const key = (c) => `${c.env}\u0000${c.version}`;
  const keys = [...new Set(answer.versions.map(key))];
  const gone = answer.versions.filter((v) => v.last_run && !v.hosts_now);
  const caption = gone.length
    ? gone.map((v) => `${name} ${v.version} gone from ${v.env} on ${date(v.last_run)}`).join("; ")
    : `${name}: every version that ran still runs`;
  const labelOf = (k) => {
    const [e, version] = k.split("\u0000");
    return env ? version : `${version} (${e})`;
  };
  drawStacked(container, {
    name: "versions", caption: answer.changes.length ? caption : `${name} has never run on a host`,
    label: `${name}: hosts per version over time${env ? ` in ${env}` : ""}. ${caption}.`,
    yLabel: "hosts", changes: answer.changes.map((c) => ({ ...c, key: key(c) })), keys, labelOf,
    linkOf: (k) => link(packageHref(name, { env: k.split("\u0000")[0] }), labelOf(k)),
    tableCaption: `${name}: hosts per version`,
    note: "A host running several versions (in different services) counts once in each.",
  });
}

/** An advisory's exposed hosts over time, stacked per env. */
export async function renderExposureOverTime(container, { id, env } = {}) {
  const answer = await getJSON("api/exposure/timeline", { id, env });
  const keys = [...new Set(answer.changes.map((c) => c.env))].sort();
  const caption = answer.changes.length
    ? `${id}: ${formatCount(answer.hosts_exposed)} hosts exposed now (as of ${formatTime(answer.horizon)})`
    : `${id}: no host ever ran an affected build`;
  drawStacked(container, {
    name: "exposure", caption, label: `Hosts exposed to ${id} over time. ${caption}.`, yLabel: "hosts",
    changes: answer.changes.map((c) => ({ ...c, key: c.env })), keys, labelOf: (k) => k,
    linkOf: (k) => link(envHref(k), k), tableCaption: `${id}: hosts exposed per env`,
    until: ms(answer.horizon), // exposure counts up to now
  });
}

/** The rollout's lines: what had to change, and how much of it was done. The manifest's
 * size (planned) is in the caption and the table, not drawn: a rollout activates only
 * what changes, and a line at the manifest's size would squash the others at the bottom. */
const DRAWN = ["changing", "activated", "failed", "drained"];
const TABLED = ["planned", ...DRAWN];

/** "55 of 55 changes activated, 0 failed, 0 drained (manifest: 1,368 placements)". */
function rolloutSummary(answer, last) {
  return `${formatCount(last.activated)} of ${formatCount(answer.changing)} changes activated, ${
    formatCount(last.failed)} failed, ${formatCount(last.drained)} drained (manifest: ${
    formatCount(answer.placements)} placements)`;
}

/** A generation's rollout: of the placements it changes, how many were activated, failed
 * and drained over time, on a scale of what changes (or of more, if more was done). */
export async function renderRollout(container, { env, number } = {}) {
  const answer = await getJSON(`api/generations/${encodeURIComponent(number)}/rollout`, { env });
  if (!answer.steps.length) {
    figure(container, { name: "rollout", caption: `generation ${answer.number} plans no placement` });
    return;
  }
  const last = answer.steps[answer.steps.length - 1];
  const summary = rolloutSummary(answer, last);
  const caption = `generation ${answer.number} (${answer.env}, ${answer.status}): ${summary}`;
  const { keep, grain } = thin(answer.steps.map((s) => ms(s.at)));
  const shown = keep.map((i) => answer.steps[i]);
  const moments = shown.map((s) => ms(s.at));
  const series = DRAWN.map((m) => ({ key: m, label: m, values: shown.map((s) => s[m]) }));
  const to = edge(moments);
  const top = Math.max(1, answer.changing, ...DRAWN.map((m) => last[m])); // the counts only grow
  const chart = frame(container, { from: moments[0], to, top, yLabel: "placements",
    label: `Rollout of generation ${answer.number} in ${answer.env} over time. ${caption}.` });
  stepLines(chart, moments, series, to);
  const rows = shown.map((s) => ({
    cells: [formatTime(s.at), ...TABLED.map((m) => formatCount(s[m]))],
    data: { at: s.at, ...Object.fromEntries(TABLED.map((m) => [m, s[m]])) },
  }));
  const head = h("span", {}, link(generationHref(answer.env, answer.number), `generation ${answer.number}`),
    ` (${answer.env}, ${answer.status}): ${summary}`);
  figure(container, { name: "rollout", caption: head, chart, legendNode: legend(chart, series, "line"),
    note: thinNote(grain, shown.length, answer.steps.length),
    table: asTable(`generation ${answer.number}: placements over time`, ["from (UTC)", ...TABLED], rows) });
}

const DORA = [
  ["deployments", "deployments", true],
  ["lead_time_hours", "median lead time (h)", false],
  ["change_failure_rate", "change failure rate", false],
  ["time_to_restore_hours", "median time to restore (h)", false],
];

/** The DORA figures per week (or `bucket`): one small bar chart per figure, one table. */
export async function renderDoraOverTime(container, { env, service, bucket = "week" } = {}) {
  const answer = await getJSON("api/metrics/timeline", { env, service, bucket });
  const who = `${service || "every service"} in ${env || "every env"}`;
  const buckets = answer.buckets;
  if (!buckets.length) {
    figure(container, { name: "dora", caption: `no deployment of ${who} yet` });
    return;
  }
  const from = ms(buckets[0].start);
  const to = ms(buckets[buckets.length - 1].end);
  // Two figures a row when there is room for both at a readable size, else one.
  const columns = container.clientWidth >= 760 ? 2 : 1;
  const width = (container.clientWidth - (columns - 1) * 16) / columns;
  const charts = DORA.map(([field, title, integer]) => {
    const known = buckets.filter((b) => b[field] !== null);
    const chart = frame(container, { from, to, top: Math.max(0, ...known.map((b) => b[field])), integer, width,
      ticks: buckets.map((b) => ms(b.start)),
      label: `${title} of ${who} per ${bucket}: ${known.map((b) => `${date(b.start)} ${b[field]}`).join(", ") || "none"}` });
    for (const b of buckets) {
      const x0 = chart.x(ms(b.start));
      const x1 = chart.x(ms(b.end));
      const width = Math.max(1, (x1 - x0) * 0.8);
      const top = chart.y(b[field] ?? 0);
      if (b[field] !== null) chart.plot.append(svgBar(x0 + (x1 - x0 - width) / 2, top, width, chart.y(0) - top, field, b));
      // The value written on the bar, where it fits: "–" for none (no bar), 0 for zero.
      if (width >= 28) {
        chart.plot.append(svg("text", { x: (x0 + x1) / 2, y: top - 3, "text-anchor": "middle", class: "bar-label" },
          b[field] === null ? "–" : String(b[field])));
      }
    }
    return h("div", { class: "dora-figure" }, h("h3", {}, title), chart.root);
  });
  const rows = buckets.map((b) => ({
    cells: [date(b.start), ...DORA.map(([field]) => (b[field] === null ? "–" : String(b[field])))],
    data: { start: b.start, ...Object.fromEntries(DORA.map(([field]) => [field, b[field] ?? ""])) },
  }));
  const table = asTable(`DORA figures of ${who} per ${bucket}`, [`${bucket} from (UTC)`, ...DORA.map((d) => d[1])], rows);
  figure(container, { name: "dora", caption: `DORA figures of ${who}, per ${bucket} (UTC)`, table });
  container.querySelector("figure").insertBefore(h("div", { class: `dora-grid cols-${columns}` }, charts), table);
}

function svgBar(x, y, width, height, field, bucket) {
  return svg("rect", {
    x, y, width, height: Math.max(height, 0.5), class: `bar bar-${field}`,
    "data-start": bucket.start, "data-field": field, "data-value": bucket[field],
  }, svg("title", {}, `${date(bucket.start)}: ${bucket[field]}`));
}
