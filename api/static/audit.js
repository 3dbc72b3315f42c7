// The audit search: which hosts run a package (any version or a range), now or at a
// past moment, from GET api/where. The summary (one row per env and version) and the
// placements a page at a time; the API's error message when it refuses the question.

import { ApiError, getJSON } from "./api.js";
import { fill, formatCount, formatTime, h, plural } from "./dom.js";
import {
  buildLink,
  envHref,
  generationLink,
  hostLink,
  link,
  packageHref,
  packageLink,
  serviceLink,
} from "./router.js";

export const PAGE = 50;

const $ = (id) => document.getElementById(id);

let controller = null;
let searches = 0;
let fleetResult = null;

export function setupAudit() {
  $("where-form").addEventListener("submit", (event) => {
    event.preventDefault();
    ask();
  });
  fleetResult = new WhereResult({
    caption: $("where-caption"),
    error: $("where-error"),
    summary: $("where-summary"),
    placements: $("where-placements"),
    shown: $("where-shown"),
    more: $("where-more"),
    moreLine: $("where-more-line"),
  });
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

/**
 * The fleet form's question goes to the package page's route (#/package/NAME?…), so a
 * search is a link to share and Back returns to the fleet; a time that is not one is
 * said here, and nothing is asked.
 */
function ask() {
  const { error: badMoment, ...asked } = question();
  if (badMoment) {
    search();
    return;
  }
  window.location.hash = packageHref(asked.name, {
    range: asked.range,
    at: asked.at,
    env: asked.env,
  });
}

/** The fleet panel's answer in place (its first look: where openssl runs now); a newer
 * search cancels an unfinished one. */
export async function search() {
  const { error: badMoment, ...asked } = question();
  if (controller) controller.abort();
  const result = $("where-result");
  $("where-at").setAttribute("aria-invalid", badMoment ? "true" : "false");
  if (badMoment) {
    // Said here, not by the browser's validation bubble: the same place as the API's errors.
    controller = null;
    fleetResult.showError(badMoment);
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
    const answer = await askWhere(asked, { signal });
    fleetResult.showAnswer(asked, answer, { share: true });
    result.dataset.state = "done";
  } catch (error) {
    if (error.name === "AbortError") return;
    fleetResult.showError(error instanceof ApiError ? error.describe() : String(error));
    result.dataset.state = "error";
  } finally {
    if (!signal.aborted) {
      $("where-submit").disabled = false;
      searches += 1;
      result.dataset.searches = String(searches);
    }
  }
}

/** GET api/where for a question {name, range, at, env}: its first page. */
export function askWhere(asked, options = {}) {
  return getJSON("api/where", { ...asked, limit: PAGE, offset: 0 }, options);
}

/**
 * The where-answer drawn into its elements: a caption, the summary (one row per env and
 * version) and the placements a page at a time. Shared by the fleet's audit panel (the
 * elements of index.html) and the package page (WhereResult.build()). Every env, host,
 * service, build, generation and version is a link to its page.
 */
export class WhereResult {
  constructor(elements) {
    this.els = elements;
    this.lastAnswer = null;
    elements.more.addEventListener("click", () => this.nextPage());
  }

  /** The elements of a where-answer, made (for a page); `.node` holds them. */
  static build() {
    const els = {
      caption: h("p", { class: "caption" }),
      error: h("p", { class: "error where-error", role: "alert", hidden: true }),
      summary: h(
        "table",
        { class: "where-summary", dataset: { testid: "where-summary" }, hidden: true },
        h(
          "thead",
          {},
          h("tr", {}, h("th", {}, "env"), h("th", {}, "version"),
            h("th", { class: "num" }, "hosts"), h("th", {}, "services")),
        ),
        h("tbody"),
      ),
      placements: h(
        "table",
        { class: "where-placements", dataset: { testid: "where-placements" }, hidden: true },
        h(
          "thead",
          {},
          h("tr", {}, ["env", "host", "service", "version", "build"].map((t) => h("th", {}, t)),
            h("th", { class: "num" }, "gen"), h("th", {}, "since (UTC)")),
        ),
        h("tbody"),
      ),
      shown: h("span"),
      more: h("button", { type: "button", class: "link" }, "next page"),
    };
    els.moreLine = h("p", { class: "hint", hidden: true }, els.shown, " ", els.more);
    const result = new WhereResult(els);
    result.node = h(
      "div",
      { class: "where-result" },
      els.error,
      els.caption,
      h("div", { class: "scroll summary-scroll" }, els.summary),
      h(
        "div",
        { class: "scroll placements-scroll", tabindex: "0", "aria-label": "placements (scrolls)" },
        els.placements,
      ),
      els.moreLine,
    );
    return result;
  }

  /** Draw an answer; `share` adds a link to the package page asking the same question. */
  showAnswer(asked, answer, { share = false } = {}) {
    const els = this.els;
    this.lastAnswer = answer;
    els.error.hidden = true;
    const versions = new Set(answer.summary.map((row) => row.version));
    const when = asked.at ? `at ${formatTime(asked.at)}` : "now";
    const question = { at: asked.at, env: asked.env, range: asked.range };
    fill(
      els.caption,
      h("b", {}, packageLink(answer.name, question)),
      asked.range ? ` ${asked.range}` : " (any version)",
      ` · ${when} · ${asked.env || "all envs"}: `,
      answer.summary.length
        ? `${plural(versions.size, "version")}, ${plural(answer.placements.total, "placement")}`
        : "nowhere",
      share
        ? [" · ", link(packageHref(answer.name, question), "open as a page (a link to share)",
            { class: "share", dataset: { testid: "where-share" } })]
        : null,
    );
    els.summary.tBodies[0].replaceChildren(
      ...answer.summary.map((row) =>
        h(
          "tr",
          { dataset: { env: row.env, version: row.version, hosts: row.hosts } },
          h("td", {}, link(envHref(row.env), row.env)),
          h(
            "td",
            { class: "mono", title: `${row.name} (${row.ecosystem}): ${row.outputs.join(", ")}` },
            packageLink(row.name, { env: row.env, range: `==${row.version}`, at: asked.at },
              row.version),
          ),
          h("td", { class: "num" }, formatCount(row.hosts)),
          h(
            "td",
            {},
            row.services.map((service) =>
              link(envHref(row.env), service, { class: "svc", title: `${service} in ${row.env}` }),
            ),
          ),
        ),
      ),
    );
    els.summary.hidden = answer.summary.length === 0;
    this.showPlacements(answer.placements);
  }

  showPlacements(page) {
    const els = this.els;
    els.placements.tBodies[0].replaceChildren(
      ...page.items.map((found) => {
        const where = { generation: found.generation, host: found.host };
        return h(
          "tr",
          { dataset: { env: found.env, host: found.host } },
          h("td", {}, link(envHref(found.env), found.env)),
          h("td", { class: "mono" }, hostLink(found.env, found.host)),
          h("td", {}, serviceLink(found.env, found.service, where)),
          h(
            "td",
            { class: "mono", title: found.store_path ?? "" },
            packageLink(found.name, { env: found.env, range: `==${found.version}` },
              found.version),
          ),
          h(
            "td",
            { class: "build" },
            buildLink(found.env, found.build_id, where),
            found.build_version
              ? [" ", h("span", { class: "build-version" }, found.build_version)]
              : null,
          ),
          h("td", { class: "num" }, generationLink(found.env, found.generation,
            String(found.generation))),
          h("td", { class: "time" }, formatTime(found.since)),
        );
      }),
    );
    els.placements.hidden = page.items.length === 0;
    const first = page.items.length ? page.offset + 1 : 0;
    const last = page.offset + page.items.length;
    els.shown.textContent =
      `placements ${formatCount(first)}–${formatCount(last)} of ${formatCount(page.total)}`;
    els.more.hidden = !page.next;
    els.more.dataset.next = page.next ?? "";
    els.moreLine.hidden = page.total === 0;
  }

  async nextPage() {
    const next = this.els.more.dataset.next;
    if (!next || !this.lastAnswer) return;
    // Only the query of `next` is used: the request stays on this origin.
    const params = Object.fromEntries(new URL(next, document.baseURI).searchParams);
    try {
      const answer = await getJSON("api/where", params);
      this.showPlacements(answer.placements);
    } catch (error) {
      this.showError(error instanceof ApiError ? error.describe() : String(error));
    }
  }

  showError(message) {
    const els = this.els;
    els.error.textContent = message;
    els.error.hidden = false;
    els.caption.textContent = "";
    els.summary.hidden = true;
    els.placements.hidden = true;
    els.moreLine.hidden = true;
  }
}
