// Routes people can share: the page is in the URL's fragment ("#/host/production/web-01"),
// so a link pasted in a chat or a Slack alert opens the same page. The fragment never
// reaches the server; "#token=SECRET" (api.js) is taken out before routing.
//
//   #/                                  the fleet (topology, generations, failures, audit)
//   #/env/ENV                           one environment
//   #/host/ENV/HOST                     a host: manifest (closure search), history, health
//   #/generation/ENV/N                  a generation: manifest, rollout, diff to its parent
//   #/diff/ENV/A/B                      what changed from generation A to B
//   #/package/NAME?at=&env=&range=      where a package runs, and its versions over time
//   #/advisory/ID?env=                  an advisory's exposure, and over time
//   #/vulns?env=                        every advisory affecting what runs
//   #/alerts                            alerts and silences
//   #/drift?env=                        hosts whose reports differ from their manifest
//   #/metrics?env=                      delivery (DORA) figures, and over time
//
// Each page other than the fleet is a module under pages/ exporting
// `render(container, route, context)`; it may be called again for the same route when
// the views move on (the page is then redrawn from fresh answers).

import { h } from "./dom.js";

/** Route name -> [the module that draws it, the names of its path parts]. */
export const ROUTES = {
  fleet: [null, []],
  env: ["./pages/env.js", ["env"]],
  host: ["./pages/host.js", ["env", "host"]],
  generation: ["./pages/generation.js", ["env", "number"]],
  diff: ["./pages/diff.js", ["env", "a", "b"]],
  package: ["./pages/package.js", ["name"]],
  advisory: ["./pages/advisory.js", ["id"]],
  vulns: ["./pages/vulns.js", []],
  alerts: ["./pages/alerts.js", []],
  drift: ["./pages/drift.js", []],
  metrics: ["./pages/metrics.js", []],
};

/** The links of the navigation bar: [route name, text]. */
export const NAVIGATION = [
  ["fleet", "fleet"],
  ["vulns", "advisories"],
  ["alerts", "alerts"],
  ["drift", "drift"],
  ["metrics", "metrics"],
];

/**
 * "#/host/production/web-01?x=1" -> {name: "host", params: {env, host}, query, hash}.
 * An unknown page or a wrong number of parts gives {name: "unknown", ...} (the page says
 * so, never a blank screen).
 */
export function parseRoute(hash) {
  const text = hash.replace(/^#\/?/, "");
  const [path, search = ""] = splitOnce(text, "?");
  const parts = path ? path.split("/").map(decodeURIComponent) : [];
  const query = new URLSearchParams(search);
  const name = parts.length ? parts[0] : "fleet";
  const route = ROUTES[name];
  if (!route || route[1].length !== parts.length - (parts.length ? 1 : 0)) {
    return { name: "unknown", params: { path }, query, hash };
  }
  const params = Object.fromEntries(route[1].map((key, i) => [key, parts[i + 1]]));
  return { name, params, query, hash };
}

/** The fragment of a route: href("host", ["production", "web-01"]) -> "#/host/production/web-01";
 * query parameters that are empty are left out. */
export function href(name, parts = [], query = {}) {
  const path = [name === "fleet" ? "" : name, ...parts.map((p) => encodeURIComponent(String(p)))]
    .filter((p, i) => i > 0 || p)
    .join("/");
  const search = new URLSearchParams(
    Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== ""),
  ).toString();
  return `#/${path}${search ? `?${search}` : ""}`;
}

export const envHref = (env) => href("env", [env]);
export const hostHref = (env, host) => href("host", [env, host]);
export const generationHref = (env, number) => href("generation", [env, number]);
export const diffHref = (env, a, b) => href("diff", [env, a, b]);
export const packageHref = (name, query = {}) => href("package", [name], query);
export const advisoryHref = (id, query = {}) => href("advisory", [id], query);

/** A link to a route: link(hostHref(env, host), host). */
export function link(target, text, attributes = {}) {
  return h("a", { href: target, ...attributes }, text);
}

/** A host, linking to its page. */
export function hostLink(env, host, attributes = {}) {
  return link(hostHref(env, host), host, { class: "mono", ...attributes });
}

/** "#12" (or `text`), linking to the generation's page. */
export function generationLink(env, number, text = `#${number}`, attributes = {}) {
  if (number === null || number === undefined) return "–";
  return link(generationHref(env, number), text, attributes);
}

/** A package, linking to its page (where it runs, its versions over time). */
export function packageLink(name, query = {}, text = name, attributes = {}) {
  return link(packageHref(name, query), text, attributes);
}

/**
 * A service: there is no page per service, so it links to where it was seen: its
 * generation's page when known, else its host's page (plain text when neither is).
 */
export function serviceLink(env, service, { generation = null, host = null } = {}) {
  if (!service) return "–";
  if (generation !== null && generation !== undefined) {
    return link(generationHref(env, generation), service, { class: "svc" });
  }
  if (host) return link(hostHref(env, host), service, { class: "svc" });
  return h("span", { class: "svc" }, service);
}

/**
 * A build: its id cut to 12 characters (the whole id in the title), linking to the
 * generation that placed it, else the host it ran on.
 */
export function buildLink(env, buildId, { generation = null, host = null } = {}) {
  if (!buildId) return "–";
  const attributes = { class: "mono build-id", title: buildId };
  const text = buildId.slice(0, 12);
  if (generation !== null && generation !== undefined) {
    return link(generationHref(env, generation), text, attributes);
  }
  if (host) return link(hostHref(env, host), text, attributes);
  return h("span", attributes, text);
}

/** The module drawing a route (a dynamic import of pages/NAME.js). */
export async function pageModule(name) {
  const [path] = ROUTES[name] || [];
  if (!path) throw new Error(`no page named ${name}`);
  return import(path);
}

function splitOnce(text, separator) {
  const at = text.indexOf(separator);
  return at < 0 ? [text] : [text.slice(0, at), text.slice(at + 1)];
}
