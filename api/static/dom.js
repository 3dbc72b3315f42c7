// Small DOM helpers. Text from the API only ever becomes text nodes or attribute
// values (never HTML), so nothing the ledger holds can inject markup.

/**
 * Create an element: h("td", {class: "num", dataset: {env: "prod"}}, "text", child).
 * Attributes that are null, undefined or false are left out; true gives an empty one.
 * Children that are strings or numbers become text nodes; null/undefined/false are
 * skipped; arrays are flattened.
 */
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") {
      for (const [name, data] of Object.entries(value)) {
        if (data !== null && data !== undefined) node.dataset[name] = String(data);
      }
    } else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...flatten(children));
  return node;
}

/** Replace a node's children as h() takes them (arrays flattened, null/false skipped). */
export function fill(node, ...children) {
  node.replaceChildren(...flatten(children));
  return node;
}

function flatten(children) {
  return children
    .flat(Infinity)
    .filter((child) => child !== null && child !== undefined && child !== false)
    .map((child) => (child instanceof Node ? child : String(child)));
}

/** Show a panel's error line (or hide it with an empty message). */
export function panelError(panel, message) {
  const line = panel.querySelector(".panel-error");
  line.textContent = message || "";
  line.hidden = !message;
}

/**
 * Any ISO 8601 time from the API -> "2026-01-19T17:14:23Z": ISO 8601, UTC, 24-hour, to the
 * second, whatever the browser's locale or time zone; "–" for none. A time with another
 * offset is converted to UTC; text that is not a time is shown as it is.
 */
export function formatTime(iso) {
  if (!iso) return "–";
  const utc = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.\d+)?(?:Z|[+-]00:?00)$/.exec(iso);
  if (utc) return `${utc[1]}T${utc[2]}Z`;
  // Without an offset a browser would read the time as local: show it as it came.
  if (!/(?:Z|[+-]\d\d:?\d\d)$/.test(iso)) return iso;
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? iso : `${moment.toISOString().slice(0, 19)}Z`;
}

/** "2026-01-19T17:14:23.602000Z" -> "2026-01-19T17:14Z" (UTC, to the minute), for narrow
 * places. */
export function formatShortTime(iso) {
  const full = formatTime(iso);
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(full) ? `${full.slice(0, 16)}Z` : full;
}

/** A count with thousands separators. */
export function formatCount(n) {
  return Number(n).toLocaleString("en-US");
}

/**
 * A page's panel: <section class="panel wide"> with its heading in a panel-head, as the
 * fleet's panels in index.html. The panel and its heading take focus (tabindex -1), so
 * the keys moving between panels (app.js) can land on it and a screen reader reads the
 * heading first.
 */
export function panel({ id, title, hint = null, wide = true }, ...children) {
  return h(
    "section",
    {
      id,
      class: wide ? "panel wide" : "panel",
      tabindex: "-1",
      "aria-labelledby": `${id}-title`,
      dataset: { testid: id },
    },
    h(
      "header",
      { class: "panel-head" },
      h("h2", { id: `${id}-title`, tabindex: "-1" }, title),
      hint ? h("span", { class: "hint" }, hint) : null,
    ),
    children,
  );
}

/**
 * A table that scrolls inside its panel when it is wider (a visible scrollbar: style.css),
 * never the page: `columns` are header texts or [text, class] pairs, `rows` <tr>s.
 */
export function scrollTable(label, columns, rows, attributes = {}) {
  return h(
    "div",
    { class: "scroll", tabindex: "0", "aria-label": `${label} (scrolls)` },
    h(
      "table",
      attributes,
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          columns.map((column) => {
            const [text, cls] = Array.isArray(column) ? column : [column, null];
            return h("th", { scope: "col", class: cls }, text);
          }),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

/** The fleet's glyphs (topology.js): the same sign for the same health everywhere. */
const HEALTH_SHAPES = { ok: "✓", warning: "!", critical: "✕", unknown: "?" };

/**
 * A health report as text and a glyph ("! warning (stale)"), coloured as well: colour is
 * never the only carrier (a colour-blind reader, a grey-scale print).
 */
export function healthBadge(text) {
  const value = text || "no report";
  const name = (/^(ok|warning|critical)\b/.exec(value) || [null, "unknown"])[1];
  const stale = /\(stale\)/.test(value);
  return h(
    "span",
    { class: `health h-${name}${stale ? " stale" : ""}`, dataset: { health: name } },
    h("span", { class: "shape", "aria-hidden": "true" }, HEALTH_SHAPES[name]),
    " ",
    value,
  );
}

/** "3 hosts" / "1 host". */
export function plural(count, noun) {
  return `${formatCount(count)} ${noun}${count === 1 ? "" : "s"}`;
}

/**
 * A page's skeleton, built once per route (`key`: the route's fragment) and kept while
 * the page is redrawn with fresh answers, so what the reader typed or opened in it stays.
 * `build()` returns {nodes: [...the page's panels], ...whatever the page fills later}.
 */
export function keptView(container, key, build) {
  const view = container.pageView;
  if (view && view.key === key && view.nodes.every((node) => node.isConnected)) return view;
  const fresh = build(); // the same object its listeners hold: not a copy
  fresh.key = key;
  container.replaceChildren(...fresh.nodes);
  container.pageView = fresh;
  return fresh;
}

/**
 * Draw one of charts.js's pictures into a fresh <div> of `holder`. The charts come from
 * their own module: a missing one (or a chart that fails) says so in its place and never
 * breaks the page around it.
 */
export async function drawChart(holder, name, options) {
  const chart = h("div", { class: "chart", dataset: { chart: name } });
  holder.replaceChildren(chart);
  let draw = null;
  let why = "";
  try {
    draw = (await import("./charts.js"))[name];
  } catch (error) {
    why = String(error.message || error);
  }
  if (typeof draw !== "function") {
    chart.replaceChildren(
      h(
        "p",
        { class: "hint chart-missing" },
        `This chart is not available (${why || `no ${name}`}).`,
      ),
    );
    return;
  }
  try {
    await draw(chart, options);
  } catch (error) {
    const message = typeof error.describe === "function" ? error.describe() : String(error);
    chart.replaceChildren(h("p", { class: "error", role: "alert" }, `chart: ${message}`));
  }
}
