// The audit search: which hosts run a package (any version or a range), now or at a
// past moment, from GET api/where. The summary (one row per env and version) and the
// placements a page at a time; the API's error message when it refuses the question.

import { ApiError, getJSON } from "./api.js";
import { formatCount, formatTime, h } from "./dom.js";

const PAGE = 50;

const $ = (id) => document.getElementById(id);

let controller = null;
let searches = 0;

export function setupAudit() {
  $("where-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  $("where-more").addEventListener("click", () => nextPage());
}

/** Keep the env choices in step with the ledger's envs (the choice made is kept). */
export function setAuditEnvs(envs) {
  const select = $("where-env");
  const chosen = select.value;
  select.replaceChildren(
    h("option", { value: "" }, "all"),
    ...envs.map((env) => h("option", { value: env }, env)),
  );
  select.value = envs.includes(chosen) ? chosen : "";
}

/** "2026-01-10T00:00" (a datetime-local value, read as UTC) -> "2026-01-10T00:00:00Z". */
export function utcFromLocalInput(value) {
  if (!value) return "";
  return `${value.length === 16 ? `${value}:00` : value}Z`;
}

function question() {
  return {
    name: $("where-name").value.trim(),
    range: $("where-range").value.trim(),
    at: utcFromLocalInput($("where-at").value),
    env: $("where-env").value,
  };
}

/** Ask the API; a newer search cancels an unfinished one. */
export async function search() {
  const asked = question();
  if (controller) controller.abort();
  controller = new AbortController();
  const { signal } = controller;
  const result = $("where-result");
  result.dataset.state = "loading";
  $("where-submit").disabled = true;
  try {
    const answer = await getJSON("api/where", { ...asked, limit: PAGE, offset: 0 }, { signal });
    showAnswer(asked, answer);
    result.dataset.state = "done";
  } catch (error) {
    if (error.name === "AbortError") return;
    showError(error instanceof ApiError ? error.describe() : String(error));
    result.dataset.state = "error";
  } finally {
    if (!signal.aborted) {
      $("where-submit").disabled = false;
      searches += 1;
      result.dataset.searches = String(searches);
    }
  }
}

let lastAnswer = null;

function showAnswer(asked, answer) {
  lastAnswer = answer;
  $("where-error").hidden = true;
  const versions = new Set(answer.summary.map((row) => row.version));
  const when = asked.at ? `at ${formatTime(asked.at)} UTC` : "now";
  $("where-caption").replaceChildren(
    h("b", {}, answer.name),
    asked.range ? ` ${asked.range}` : " (any version)",
    ` · ${when} · ${asked.env || "all envs"}: `,
    answer.summary.length
      ? `${plural(versions.size, "version")}, ${plural(answer.placements.total, "placement")}`
      : "nowhere",
  );
  const summary = $("where-summary");
  summary.tBodies[0].replaceChildren(
    ...answer.summary.map((row) =>
      h(
        "tr",
        { dataset: { env: row.env, version: row.version, hosts: row.hosts } },
        h("td", {}, row.env),
        h("td", { class: "mono", title: `${row.name} (${row.ecosystem}): ${row.outputs.join(", ")}` }, row.version),
        h("td", { class: "num" }, formatCount(row.hosts)),
        h("td", {}, row.services.map((service) => h("span", { class: "svc" }, service))),
      ),
    ),
  );
  summary.hidden = answer.summary.length === 0;
  showPlacements(answer.placements);
}

function showPlacements(page) {
  const table = $("where-placements");
  table.tBodies[0].replaceChildren(
    ...page.items.map((found) =>
      h(
        "tr",
        { dataset: { env: found.env, host: found.host } },
        h("td", {}, found.env),
        h("td", { class: "mono" }, found.host),
        h("td", {}, found.service),
        h("td", { class: "mono", title: found.store_path ?? "" }, found.version),
        h(
          "td",
          { class: "mono", title: found.build_id },
          found.build_version ?? found.build_id.slice(0, 12),
        ),
        h("td", { class: "num" }, found.generation ?? "–"),
        h("td", { class: "time" }, formatTime(found.since)),
      ),
    ),
  );
  table.hidden = page.items.length === 0;
  const first = page.items.length ? page.offset + 1 : 0;
  const last = page.offset + page.items.length;
  $("where-shown").textContent =
    `placements ${formatCount(first)}–${formatCount(last)} of ${formatCount(page.total)}`;
  $("where-more").hidden = !page.next;
  $("where-more").dataset.next = page.next ?? "";
  $("where-more-line").hidden = page.total === 0;
}

async function nextPage() {
  const next = $("where-more").dataset.next;
  if (!next || !lastAnswer) return;
  // Only the query of `next` is used: the request stays on this origin.
  const params = Object.fromEntries(new URL(next, document.baseURI).searchParams);
  try {
    const answer = await getJSON("api/where", params);
    showPlacements(answer.placements);
  } catch (error) {
    showError(error instanceof ApiError ? error.describe() : String(error));
  }
}

function showError(message) {
  const line = $("where-error");
  line.textContent = message;
  line.hidden = false;
  $("where-caption").textContent = "";
  $("where-summary").hidden = true;
  $("where-placements").hidden = true;
  $("where-more-line").hidden = true;
}

function plural(count, noun) {
  return `${formatCount(count)} ${noun}${count === 1 ? "" : "s"}`;
}
