// The dashboard: wires the token, the routes, the panels and the live stream together.
//
// Start: read /api/status (401: ask for a token), show the route's page, follow the
// stream. The fleet route is the panels of index.html; every other route is drawn into
// <main id="page"> by its module (router.js). Live: each `ledger` message moves the head;
// each `views` message (the views now include those events) redraws the page shown, at
// most once a second.

import {
  ApiError,
  forgetToken,
  getJSON,
  getToken,
  setToken,
  takeTokenFromFragment,
} from "./api.js";
import { setAuditEnvs, search, setupAudit } from "./audit.js";
import { formatCount, formatTime, panelError } from "./dom.js";
import { renderFailures } from "./failures.js";
import { NAVIGATION, href, pageModule, parseRoute } from "./router.js";
import { LedgerStream } from "./stream.js";
import { fetchTopology, renderTopology } from "./topology.js";
import { renderTree } from "./tree.js";

const REFRESH_EVERY_MS = 1000;
const FAILURES_SHOWN = 20;
const STATE_TEXT = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  unauthorized: "no token",
  stopped: "stopped",
  offline: "offline",
};

const $ = (id) => document.getElementById(id);

const state = {
  envs: [],
  stream: null,
  refreshing: null, // the running refresh (a promise), if any
  again: false, // a refresh was asked for while one ran
  timer: null, // a scheduled refresh
  lastRefresh: 0,
  searchedOnce: false,
  route: parseRoute(""),
  page: 0, // counts page draws: a late draw of a route left behind is dropped
};

// --- the token --------------------------------------------------------------------

function askForToken(message) {
  stopStream();
  $("dashboard").hidden = true;
  $("page").hidden = true;
  $("nav").hidden = true;
  $("token-panel").hidden = false;
  $("token-change").hidden = true;
  $("token-message").textContent = message || "";
  $("token-message").hidden = !message;
  $("token-forget").hidden = !getToken();
  setConnection("unauthorized", "a token is needed");
  $("token-input").focus();
}

function setupTokenForm() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken($("token-input").value);
    $("token-input").value = "";
    start();
  });
  $("token-forget").addEventListener("click", () => {
    forgetToken();
    start();
  });
  $("token-change").addEventListener("click", () => askForToken(""));
}

// --- the header -------------------------------------------------------------------

function setConnection(name, detail) {
  const indicator = $("conn");
  indicator.dataset.state = name;
  indicator.textContent = STATE_TEXT[name] || name;
  indicator.title = detail ? `the live event stream: ${detail}` : "the live event stream";
}

function setPosition(id, position) {
  const node = $(id);
  const known = Number(node.dataset.position || 0);
  if (position < known) return; // a late answer must not move it back
  node.dataset.position = String(position);
  node.textContent = formatCount(position);
}

function applyStatus(status) {
  setPosition("head", status.head);
  setPosition("views-position", status.views);
  $("whoami").textContent = `${status.token} · ${status.role}`;
  state.envs = status.envs;
  setAuditEnvs(status.envs);
}

// --- the panels -------------------------------------------------------------------

/** Redraw what the route shows: the fleet's panels or the route's page. */
async function loadPanels() {
  if (state.route.name === "fleet") await loadFleet();
  else await drawPage();
}

/** Reload status, topology, tree and failures; each panel shows its own error. */
async function loadFleet() {
  const [status, topology, tree, failures] = await Promise.allSettled([
    getJSON("api/status"),
    fetchTopology(),
    getJSON("api/generations/tree"),
    getJSON("api/failures", {
      kind: "activation_failed",
      newest_first: true,
      limit: FAILURES_SHOWN,
    }),
  ]);
  const refused = [status, topology, tree, failures].find(
    (r) => r.status === "rejected" && r.reason instanceof ApiError && r.reason.status === 401,
  );
  if (refused) {
    askForToken(refused.reason.message);
    return;
  }
  if (status.status === "fulfilled") applyStatus(status.value);
  show($("topology-panel"), topology, (answer) =>
    renderTopology($("topology"), answer, state.envs),
  );
  show($("tree-panel"), tree, (roots) => renderTree($("tree"), roots));
  show($("failures-panel"), failures, (page) =>
    renderFailures($("failures"), $("failures-empty"), page.items),
  );
  $("updated").textContent = `updated ${formatTime(new Date().toISOString())}`;
}

function show(panel, result, render) {
  if (result.status === "fulfilled") {
    render(result.value);
    panelError(panel, "");
  } else {
    const error = result.reason;
    panelError(panel, `could not refresh: ${error instanceof ApiError ? error.describe() : error}`);
  }
}

/** Refresh now, or once the running refresh is over (never two at a time). */
function refresh() {
  if (state.refreshing) {
    state.again = true;
    return state.refreshing;
  }
  state.refreshing = (async () => {
    do {
      state.again = false;
      state.lastRefresh = Date.now();
      await loadPanels();
    } while (state.again);
  })().finally(() => {
    state.refreshing = null;
  });
  return state.refreshing;
}

/** Refresh soon: at most once every REFRESH_EVERY_MS, however many messages come. */
function scheduleRefresh() {
  if (state.timer !== null) return;
  const wait = Math.max(0, state.lastRefresh + REFRESH_EVERY_MS - Date.now());
  state.timer = setTimeout(() => {
    state.timer = null;
    refresh();
  }, wait);
}

// --- the routes -------------------------------------------------------------------

function renderNavigation() {
  $("nav-links").replaceChildren(
    ...NAVIGATION.map(([name, text]) => {
      const link = document.createElement("a");
      link.href = href(name);
      link.textContent = text;
      link.dataset.route = name;
      return link;
    }),
  );
}

function markNavigation() {
  for (const link of $("nav-links").querySelectorAll("a")) {
    if (link.dataset.route === state.route.name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** Show the route of the address bar (on start and on every hashchange). */
async function showRoute() {
  state.route = parseRoute(window.location.hash);
  markNavigation();
  document.title = pageTitle(state.route);
  const fleet = state.route.name === "fleet";
  $("dashboard").hidden = !fleet;
  $("page").hidden = fleet;
  if (fleet) {
    $("page").replaceChildren();
    $("page").dataset.route = "";
    await refresh();
    if (!state.searchedOnce) {
      state.searchedOnce = true;
      search(); // the default question: where is openssl now
    }
    return;
  }
  $("page").replaceChildren();
  window.scrollTo(0, 0);
  await refresh();
}

/** Draw the route's page into <main id="page"> with its module (pages/NAME.js). */
async function drawPage() {
  const route = state.route;
  const draw = ++state.page;
  const container = $("page");
  container.dataset.route = route.name;
  container.dataset.state = "loading";
  try {
    if (route.name === "unknown") {
      container.replaceChildren(unknownPage(route));
    } else {
      const module = await pageModule(route.name);
      if (draw !== state.page) return;
      const isCurrent = () => draw === state.page;
      await module.render(container, route, { envs: state.envs, isCurrent });
    }
    if (draw !== state.page) return;
    container.dataset.state = "done";
    container.dataset.drawn = route.hash; // which address the page shows (tests wait on it)
  } catch (error) {
    if (draw !== state.page) return;
    if (error instanceof ApiError && error.status === 401) {
      askForToken(error.message);
      return;
    }
    const message = error instanceof ApiError ? error.describe() : String(error);
    container.replaceChildren(pageError(message));
    container.dataset.state = "error";
    container.dataset.drawn = route.hash;
  }
  $("updated").textContent = `updated ${formatTime(new Date().toISOString())}`;
}

/** "deploy-ledger · host production/web-004": the tab and the history say which page. */
function pageTitle(route) {
  if (route.name === "fleet") return "deploy-ledger";
  const parts = Object.values(route.params).join("/");
  return `deploy-ledger · ${route.name === "unknown" ? "no such page" : `${route.name} ${parts}`}`;
}

// --- moving between panels with the keyboard ---------------------------------------

/** The panels of what is shown (the fleet's or the page's), in reading order. */
function visiblePanels() {
  const main = $("dashboard").hidden ? $("page") : $("dashboard");
  return [...main.querySelectorAll(":scope > .panel")].filter(
    (panel) => !panel.hidden && panel.getClientRects().length > 0,
  );
}

/** Focus the next (step 1) or previous (-1) panel's heading, from the focused one. */
function movePanel(step) {
  const panels = visiblePanels();
  if (!panels.length) return;
  const at = panels.findIndex((panel) => panel.contains(document.activeElement));
  const next = at < 0 ? (step > 0 ? 0 : panels.length - 1) : at + step;
  const panel = panels[Math.max(0, Math.min(panels.length - 1, next))];
  const heading = panel.querySelector(":scope > .panel-head h2");
  if (heading && !heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
  (heading || panel).focus();
}

/** "]" / "[" (outside a text field) or Alt+↓ / Alt+↑ (anywhere) move between panels. */
function onKey(event) {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey) return;
  const typing = event.target instanceof Element && event.target.closest("input, textarea, select");
  let step = 0;
  if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
    step = event.key === "ArrowDown" ? 1 : -1;
  } else if (!typing && !event.altKey && (event.key === "]" || event.key === "[")) {
    step = event.key === "]" ? 1 : -1;
  }
  if (!step || !$("token-panel").hidden) return;
  event.preventDefault();
  movePanel(step);
}

function unknownPage(route) {
  const page = document.createElement("section");
  page.className = "panel wide";
  page.tabIndex = -1;
  const title = document.createElement("h2");
  title.textContent = "No such page";
  const text = document.createElement("p");
  text.className = "error";
  text.setAttribute("role", "alert");
  text.textContent = `"#/${route.params.path}" is not a page of this dashboard.`;
  const back = document.createElement("a");
  back.href = href("fleet");
  back.textContent = "back to the fleet";
  page.append(title, text, back);
  return page;
}

function pageError(message) {
  const page = document.createElement("section");
  page.className = "panel wide";
  page.tabIndex = -1;
  const text = document.createElement("p");
  text.className = "error page-error";
  text.setAttribute("role", "alert");
  text.textContent = message;
  page.append(text);
  return page;
}

// --- the stream -------------------------------------------------------------------

function startStream() {
  stopStream();
  state.stream = new LedgerStream({
    onMessage({ event, id, data }) {
      if (event === "ledger") {
        setPosition("head", Number(id ?? data.position));
        const where = [data.env, data.host, data.service].filter(Boolean).join(" ");
        $("last-event").textContent = `last: ${data.kind ?? "?"} ${where}`;
      } else if (event === "views") {
        setPosition("views-position", Number(data.position));
        scheduleRefresh();
      }
    },
    onState(name, detail) {
      if (name === "unauthorized") {
        askForToken(detail);
        return;
      }
      if (name === "stopped") return;
      setConnection(name, typeof detail === "string" ? detail : "");
      // After a reconnection the views may have moved on while we were away.
      if (name === "live" && detail > 1) scheduleRefresh();
    },
  });
  state.stream.start();
}

function stopStream() {
  if (state.stream) {
    const stream = state.stream;
    state.stream = null;
    stream.stop();
  }
}

// --- start ------------------------------------------------------------------------

async function start() {
  stopStream();
  let status;
  try {
    status = await getJSON("api/status");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      askForToken(getToken() ? error.message : "");
      return;
    }
    setConnection("offline", error.message);
    setTimeout(start, 5000); // the server is away: try again
    return;
  }
  $("token-panel").hidden = true;
  $("nav").hidden = false;
  $("token-change").hidden = false;
  applyStatus(status);
  await showRoute();
  if (!$("token-panel").hidden) return; // a panel was refused: the token form shows
  startStream();
}

takeTokenFromFragment();
setupTokenForm();
setupAudit();
renderNavigation();
document.addEventListener("keydown", onKey);
window.addEventListener("hashchange", () => {
  if (takeTokenFromFragment()) {
    start();
    return;
  }
  if ($("token-panel").hidden) showRoute();
});
start();
