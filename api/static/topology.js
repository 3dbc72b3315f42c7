// The fleet topology panel, from one answer counted by the server
// (GET api/topology/summary): per env, hosts grouped by the generation of their newest
// placement. An env of at most `tile_limit` hosts gets one tile per host (a link to its
// page); a larger one gets a box per generation with its hosts counted per health, a
// bar and the numbers as text, and its services. Health is never carried by colour
// alone: every tile, chip and count has a glyph (✓ ! ✕ ?) and stale ones are hatched
// and say so.

import { getJSON } from "./api.js";
import { formatCount, h } from "./dom.js";
import { envHref, generationHref, hostHref, link } from "./router.js";

/** Hosts listed by name under an env when they are not ok, at most this many. */
const ATTENTION_LIMIT = 16;
/** Tiles per row in a generation's box, at most. */
const MAX_COLUMNS = 24;
/** Health levels, worst first: the order counts are shown in. */
const WORST_FIRST = ["critical", "warning", "ok", "unknown"];
const GLYPHS = { ok: "✓", warning: "!", critical: "✕", unknown: "?" };

/** The generations whose services the user opened ("env\0number"): kept across redraws. */
const openServices = new Set();

/** What the panel draws (renderTopology's `answer`): the fleet counted per generation. */
export function fetchTopology() {
  return getJSON("api/topology/summary", { attention_limit: ATTENTION_LIMIT });
}

export function renderTopology(container, answer, envs) {
  const byEnv = new Map(answer.envs.map((env) => [env.env, env]));
  // Envs that have generations but nothing active yet still get a (empty) block.
  const names = [...new Set([...envs, ...byEnv.keys()])].sort();
  const focused = focusKey(container);
  container.replaceChildren(
    ...names.map((env) => renderEnv(byEnv.get(env) ?? emptyEnv(env), answer.tile_limit)),
  );
  // A live redraw must not throw a keyboard user back to the top of the page.
  if (focused) container.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

function focusKey(container) {
  const active = document.activeElement;
  return active && container.contains(active) ? active.dataset.key : null;
}

function emptyEnv(env) {
  const health = { ok: 0, warning: 0, critical: 0, unknown: 0, stale: 0 };
  const attention = { total: 0, hosts: [] };
  return { env, hosts: 0, placements: 0, health, generations: [], attention, tiles: [] };
}

function renderEnv(env, tileLimit) {
  const tiled = env.tiles !== null;
  const byGeneration = tiled ? groupBy(env.tiles, (tile) => tile.generation) : new Map();
  return h(
    "section",
    {
      class: "env",
      dataset: {
        env: env.env,
        testid: `topology-${env.env}`,
        hosts: env.hosts,
        drawn: tiled ? "tiles" : "counts",
      },
    },
    h(
      "header",
      { class: "env-head" },
      h("h3", {}, link(envHref(env.env), env.env, { "data-key": `env\u0000${env.env}` })),
      h(
        "span",
        { class: "counts" },
        `${formatCount(env.hosts)} hosts · ${formatCount(env.placements)} placements · `,
        `${env.generations.length} ${env.generations.length === 1 ? "generation" : "generations"}`,
        " active",
      ),
      healthCounts(env.health),
    ),
    env.hosts === 0 ? h("p", { class: "hint" }, "Nothing is active.") : null,
    tiled
      ? null
      : h(
          "p",
          { class: "hint" },
          `More than ${formatCount(tileLimit)} hosts: counted per generation and service. `,
          "Hosts that are not ok: ",
          link(envHref(env.env), `${env.env}'s page`),
          ".",
        ),
    h(
      "div",
      { class: "gen-groups" },
      env.generations.map((group) =>
        tiled
          ? renderTiles(env.env, group, byGeneration.get(group.generation) ?? [])
          : renderCounts(env.env, group),
      ),
    ),
    env.attention.total ? renderAttention(env.env, env.attention) : null,
  );
}

function generationLabel(env, group) {
  return h(
    "div",
    { class: "gen-label" },
    h("b", {}, link(generationHref(env, group.generation), `gen ${group.generation}`, {
      "data-key": `gen\u0000${env}\u0000${group.generation}`,
    })),
    " ",
    h("span", {}, `${formatCount(group.hosts)} ${group.hosts === 1 ? "host" : "hosts"}`),
  );
}

/** A generation of a small env: a tile per host. */
function renderTiles(env, group, hosts) {
  const sorted = hosts
    .slice()
    .sort((a, b) => a.host.localeCompare(b.host, "en", { numeric: true }));
  const tiles = h("div", { class: "tiles" }, sorted.map((host) => renderTile(env, host)));
  // The box is as wide as its tiles (up to MAX_COLUMNS), so small groups sit side by side.
  tiles.style.setProperty("--columns", String(Math.min(sorted.length, MAX_COLUMNS)));
  return h(
    "div",
    { class: "gen-group", dataset: { generation: group.generation, hosts: group.hosts } },
    generationLabel(env, group),
    tiles,
  );
}

function healthText(host) {
  return `${host.health}${host.stale ? " (stale)" : ""}`;
}

/** A host's tile: a link to its page, its glyph inside, its health in words for
 * assistive technology and in the tooltip. */
function renderTile(env, host) {
  const health = healthText(host);
  const services = `${host.placements} ${host.placements === 1 ? "service" : "services"}`;
  return h(
    "a",
    {
      class: `host h-${host.health}${host.stale ? " stale" : ""}`,
      href: hostHref(env, host.host),
      title: `${host.host} — ${health}, gen ${host.generation}, ${services}`,
      "aria-label": `${host.host}: ${health}`,
      dataset: {
        host: host.host,
        env,
        health: host.health,
        stale: host.stale,
        generation: host.generation,
        key: `host\u0000${env}\u0000${host.host}`,
      },
    },
    GLYPHS[host.health],
  );
}

/** A generation of a large env: its hosts counted per health (a bar, and the numbers as
 * text), and its services, folded. */
function renderCounts(env, group) {
  const health = group.health;
  const key = `${env}\u0000${group.generation}`;
  const services = h(
    "details",
    { class: "gen-services", open: openServices.has(key) },
    h(
      "summary",
      {},
      `${group.services.length} ${group.services.length === 1 ? "service" : "services"} · `,
      `${formatCount(group.placements)} placements`,
    ),
    h("ul", {}, group.services.map((service) => h("li", {}, serviceLink(env, group, service)))),
  );
  services.addEventListener("toggle", () => {
    if (services.open) openServices.add(key);
    else openServices.delete(key);
  });
  return h(
    "div",
    {
      class: "gen-group gen-counts",
      dataset: {
        generation: group.generation,
        hosts: group.hosts,
        placements: group.placements,
        ok: health.ok,
        warning: health.warning,
        critical: health.critical,
        unknown: health.unknown,
        stale: health.stale,
      },
    },
    generationLabel(env, group),
    healthBar(`gen ${group.generation}`, health, group.hosts),
    h(
      "ul",
      { class: "level-counts" },
      WORST_FIRST.filter((level) => health[level] > 0).map((level) =>
        h(
          "li",
          { class: `h-${level}`, dataset: { level, count: health[level] } },
          h("span", { class: "glyph", "aria-hidden": "true" }, GLYPHS[level]),
          ` ${level} ${formatCount(health[level])}`,
        ),
      ),
      health.stale
        ? h("li", { class: "stale-count", dataset: { level: "stale", count: health.stale } },
            `stale ${formatCount(health.stale)}`)
        : null,
    ),
    services,
  );
}

/** Hosts per health level as one bar; the same numbers are in the list beside it. */
function healthBar(label, health, total) {
  const words = WORST_FIRST.filter((level) => health[level] > 0).map(
    (level) => `${formatCount(health[level])} ${level}`,
  );
  const stale = health.stale ? `; ${formatCount(health.stale)} stale` : "";
  const bar = h("div", {
    class: "health-bar",
    role: "img",
    "aria-label": `${label}: ${words.join(", ")}${stale}`,
  });
  for (const level of WORST_FIRST) {
    if (!health[level]) continue;
    const segment = h("span", {
      class: `segment h-${level}`,
      title: `${level}: ${formatCount(health[level])}`,
    });
    segment.style.width = `${(100 * health[level]) / Math.max(total, 1)}%`;
    bar.append(segment);
  }
  return bar;
}

/** A service of a generation: a link to the generation (which lists its hosts), with its
 * placements that are not ok counted. */
function serviceLink(env, group, service) {
  const bad = ["critical", "warning"]
    .filter((level) => service.health[level] > 0)
    .map((level) => `${GLYPHS[level]}${formatCount(service.health[level])}`);
  const text = [service.service, formatCount(service.placements), ...bad].join(" ");
  const counts = WORST_FIRST.filter((level) => service.health[level] > 0)
    .map((level) => `${service.health[level]} ${level}`)
    .join(", ");
  return link(generationHref(env, group.generation), text, {
    class: "svc-count",
    title: `${service.service} in gen ${group.generation}: ${service.placements} placements`
      + ` (${counts})`,
    dataset: { service: service.service },
  });
}

function healthCounts(health) {
  return h(
    "span",
    { class: "health-counts" },
    WORST_FIRST.filter((level) => health[level] > 0).map((level) =>
      h(
        "span",
        { class: `pill h-${level}` },
        `${GLYPHS[level]} ${level} ${formatCount(health[level])}`,
      ),
    ),
    health.stale
      ? h("span", { class: "pill stale-pill" }, `stale ${formatCount(health.stale)}`)
      : null,
  );
}

function renderAttention(env, attention) {
  const more = attention.total - attention.hosts.length;
  return h(
    "p",
    { class: "attention", dataset: { total: attention.total } },
    "not ok: ",
    attention.hosts.map((host) =>
      link(hostHref(env, host.host), `${GLYPHS[host.health]} ${host.host} ${healthText(host)}`, {
        class: `chip h-${host.health}${host.stale ? " stale" : ""}`,
        dataset: {
          host: host.host,
          health: host.health,
          key: `chip\u0000${env}\u0000${host.host}`,
        },
      }),
    ),
    more > 0 ? link(envHref(env), `and ${formatCount(more)} more`, { class: "more" }) : null,
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
