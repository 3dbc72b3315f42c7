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

const MOMENT =
  /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d))?)?(?:Z|[+-]00:?00)?$/i;

/**
 * The "at" field as the API wants it: "2026-01-10T14:30:00Z". It takes a 24-hour UTC time
 * ("2026-01-10T14:30:00Z", seconds and the Z optional) or a date (its midnight, UTC): a
 * text field, because a datetime-local picker shows the browser's 12-hour locale clock and
 * local zone. Returns {at} ("" for now) or {error}, a sentence saying what to write.
 */
export function parseMoment(text) {
  const value = text.trim();
  if (!value) return { at: "" };
  const match = MOMENT.exec(value);
  if (match) {
    const [year, month, day, hour, minute, second] = match
      .slice(1)
      .map((part) => Number(part ?? 0));
    const moment = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
    const real =
      moment.getUTCFullYear() === year &&
      moment.getUTCMonth() === month - 1 &&
      moment.getUTCDate() === day &&
      moment.getUTCHours() === hour &&
      moment.getUTCMinutes() === minute &&
      moment.getUTCSeconds() === second;
    if (real) return { at: `${moment.toISOString().slice(0, 19)}Z` };
  }
  return {
    error:
      `at: "${value}" is not a UTC time; write it as 2026-01-10T14:30:00Z ` +
      "(24-hour, UTC) or as a date, 2026-01-10, or leave it empty for now.",
  };
}

function question() {
  const moment = parseMoment($("where-at").value);
  return {
    name: $("where-name").value.trim(),
    range: $("where-range").value.trim(),
    at: moment.at ?? "",
    env: $("where-env").value,
    error: moment.error,
  };
}

/** Ask the API; a newer search cancels an unfinished one. */
export async function search() {
  const { error: badMoment, ...asked } = question();
  if (controller) controller.abort();
  const result = $("where-result");
  $("where-at").setAttribute("aria-invalid", badMoment ? "true" : "false");
  if (badMoment) {
    // Said here, not by the browser's validation bubble: the same place as the API's errors.
    controller = null;
    showError(badMoment);
    result.dataset.state = "error";
    $("where-submit").disabled = false;
    searches += 1;
    result.dataset.searches = String(searches);
    return;
  }
  controller = new AbortController();
  const { signal } = controller;
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
  const when = asked.at ? `at ${formatTime(asked.at)}` : "now";
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
          { class: "build" },
          h("span", { class: "mono build-id", title: found.build_id }, found.build_id.slice(0, 12)),
          found.build_version
            ? [" ", h("span", { class: "build-version" }, found.build_version)]
            : null,
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
