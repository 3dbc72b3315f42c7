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
