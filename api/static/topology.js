// The fleet topology panel: per env, hosts grouped by generation, one tile per host
// coloured by its worst health.

import { getAllPages } from "./api.js";
import { formatCount, h } from "./dom.js";

const LEVELS = { ok: 1, warning: 2, critical: 3 };
const NAMES = ["unknown", "ok", "warning", "critical"];
/** Hosts listed by name under an env when they are not ok, at most this many. */
const ATTENTION_LIMIT = 16;
/** Tiles per row in a generation's box, at most. */
const MAX_COLUMNS = 24;

/** "warning (stale)" -> {level: 2, stale: true}; null or unknown text -> level 0. */
export function parseHealth(text) {
  if (!text) return { level: 0, stale: false };
  const stale = /\(stale\)\s*$/.test(text);
  const name = text.replace(/\(stale\)\s*$/, "").trim();
  return { level: LEVELS[name] ?? 0, stale };
}

/**
 * One entry per (env, host): its placements, generation (that of its newest
 * placement) and worst health. A host is stale when every report at its worst level is.
 */
export function summariseHosts(placements) {
  const hosts = new Map();
  for (const placement of placements) {
    const key = `${placement.env}\u0000${placement.host}`;
    let host = hosts.get(key);
    if (!host) {
      host = { env: placement.env, host: placement.host, placements: [], generation: null };
      hosts.set(key, host);
    }
    host.placements.push(placement);
    if (placement.generation !== null && placement.generation !== undefined) {
      host.generation = Math.max(host.generation ?? 0, placement.generation);
    }
  }
  for (const host of hosts.values()) {
    const health = host.placements.map((p) => parseHealth(p.health));
    host.level = Math.max(0, ...health.map((x) => x.level));
    const worst = health.filter((x) => x.level === host.level);
    host.stale = host.level > 0 && worst.every((x) => x.stale);
    host.healthName = NAMES[host.level];
  }
  return [...hosts.values()];
}

/** What the panel draws (renderTopology's `answer`): every active placement. */
export function fetchTopology() {
  return getAllPages("api/topology");
}

export function renderTopology(container, placements, envs) {
  const hosts = summariseHosts(placements);
  const byEnv = groupBy(hosts, (host) => host.env);
  // Envs that have generations but nothing active yet still get a (empty) block.
  const names = [...new Set([...envs, ...byEnv.keys()])].sort();
  container.replaceChildren(
    ...names.map((env) => renderEnv(env, byEnv.get(env) || [], placements)),
  );
}

function renderEnv(env, hosts, placements) {
  const count = placements.filter((p) => p.env === env).length;
  const byGeneration = groupBy(hosts, (host) => host.generation);
  const generations = [...byGeneration.keys()].sort((a, b) => (b ?? -1) - (a ?? -1));
  const attention = hosts
    .filter((host) => host.level >= LEVELS.warning)
    .sort((a, b) => b.level - a.level || a.host.localeCompare(b.host));
  return h(
    "section",
    { class: "env", dataset: { env, testid: `topology-${env}` } },
    h(
      "header",
      { class: "env-head" },
      h("h3", {}, env),
      h(
        "span",
        { class: "counts" },
        `${formatCount(hosts.length)} hosts · ${formatCount(count)} placements · `,
        `${generations.length} generations active`,
      ),
      healthCounts(hosts),
    ),
    hosts.length === 0 ? h("p", { class: "hint" }, "Nothing is active.") : null,
    h(
      "div",
      { class: "gen-groups" },
      generations.map((generation) => renderGeneration(generation, byGeneration.get(generation))),
    ),
    attention.length ? renderAttention(attention) : null,
  );
}

function renderGeneration(generation, hosts) {
  hosts.sort((a, b) => a.host.localeCompare(b.host, "en", { numeric: true }));
  const tiles = h("div", { class: "tiles" }, hosts.map(renderTile));
  // The box is as wide as its tiles (up to MAX_COLUMNS), so small groups sit side by side.
  tiles.style.setProperty("--columns", String(Math.min(hosts.length, MAX_COLUMNS)));
  const label = generation === null ? "no generation" : `gen ${generation}`;
  return h(
    "div",
    { class: "gen-group", dataset: { generation: generation ?? "", hosts: hosts.length } },
    h(
      "div",
      { class: "gen-label" },
      h("b", {}, label),
      " ",
      h("span", {}, `${hosts.length} ${hosts.length === 1 ? "host" : "hosts"}`),
    ),
    tiles,
  );
}

/** A host's tile; its tooltip lists the services with their builds and health. */
function renderTile(host) {
  const health = `${host.healthName}${host.stale ? " (stale)" : ""}`;
  const services = host.placements
    .slice()
    .sort((a, b) => a.service.localeCompare(b.service))
    .map((p) => {
      const build = p.version ?? p.build_id;
      return `${p.service} ${build} (gen ${p.generation ?? "?"}): ${p.health ?? "no report"}`;
    });
  return h("span", {
    class: `host h-${host.healthName}${host.stale ? " stale" : ""}`,
    title: [`${host.host} — ${health}, gen ${host.generation ?? "?"}`, ...services].join("\n"),
    role: "img",
    "aria-label": `${host.host}: ${health}`,
    dataset: {
      host: host.host,
      env: host.env,
      health: host.healthName,
      stale: host.stale,
      generation: host.generation ?? "",
    },
  });
}

function healthCounts(hosts) {
  const counts = [0, 0, 0, 0];
  let stale = 0;
  for (const host of hosts) {
    counts[host.level] += 1;
    if (host.stale) stale += 1;
  }
  return h(
    "span",
    { class: "health-counts" },
    [3, 2, 1, 0]
      .filter((level) => counts[level] > 0)
      .map((level) =>
        h("span", { class: `pill h-${NAMES[level]}` }, `${NAMES[level]} ${counts[level]}`),
      ),
    stale ? h("span", { class: "pill stale-pill" }, `stale ${stale}`) : null,
  );
}

function renderAttention(hosts) {
  const shown = hosts.slice(0, ATTENTION_LIMIT);
  return h(
    "p",
    { class: "attention" },
    "not ok: ",
    shown.map((host) =>
      h(
        "span",
        {
          class: `chip h-${host.healthName}${host.stale ? " stale" : ""}`,
          title: host.stale ? "stale report" : null,
        },
        `${host.host} ${host.healthName}`,
      ),
    ),
    hosts.length > shown.length ? ` and ${hosts.length - shown.length} more` : null,
  );
}

function groupBy(items, key) {
  const groups = new Map();
  for (const item of items) {
    const k = key(item);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(item);
  }
  return groups;
}
