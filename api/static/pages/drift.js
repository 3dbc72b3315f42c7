// #/drift?env=&offset=&limit=: hosts whose own reports differ from their generation's
// manifest (GET api/drift): per env the counts, then the problems a page at a time (the
// page is in the URL: offset, and limit, 50 unless given), hosts, services, builds and
// generations as links.

import { getJSON } from "../api.js";
import { formatCount, formatTime, h, keptView, panel, plural, scrollTable } from "../dom.js";
import { buildLink, envHref, generationLink, href, hostLink, link, serviceLink } from "../router.js";
import { envOptions, filterForm } from "./vulns.js";

const PAGE = 50;
const MAX_PAGE = 1000;

/** A whole number from the query, within [low, high]; `fallback` when absent or bad. */
function whole(text, fallback, low, high) {
  const value = Number.parseInt(text || "", 10);
  return Number.isFinite(value) ? Math.min(high, Math.max(low, value)) : fallback;
}

export async function render(container, route, context) {
  const env = route.query.get("env") || "";
  const offset = whole(route.query.get("offset"), 0, 0, Number.MAX_SAFE_INTEGER);
  const limit = whole(route.query.get("limit"), PAGE, 1, MAX_PAGE);
  const view = keptView(container, route.hash, () => build(route, context));
  const answer = await getJSON("api/drift", { env, limit, offset });
  if (!context.isCurrent()) return;
  view.envs.querySelector("tbody").replaceChildren(...answer.envs.map(envRow));
  const problems = answer.problems;
  view.problems.querySelector("tbody").replaceChildren(...problems.items.map(problemRow));
  view.empty.hidden = problems.total > 0;
  view.problems.hidden = problems.total === 0;
  const last = offset + problems.items.length;
  view.count.textContent = problems.total
    ? `${formatCount(offset + (problems.items.length ? 1 : 0))}–${formatCount(last)} of ${plural(problems.total, "problem")}`
    : "no problem";
  const size = route.query.get("limit") ? limit : "";
  const to = (at) => href("drift", [], { env, offset: at || "", limit: size });
  const links = [
    offset > 0 ? link(to(Math.max(0, offset - limit)), "← previous", { rel: "prev" }) : null,
    problems.next ? link(to(offset + limit), "next →", { rel: "next" }) : null,
  ];
  view.pager.replaceChildren(...links.filter(Boolean));
}

function build(route, context) {
  const form = filterForm(route, [{ name: "env", label: "env", options: envOptions(context.envs) }], "drift-filter");
  const envs = scrollTable(
    "drift per env",
    ["env", ["gen", "num"], ["hosts", "num"], ["reported", "num"], ["matching", "num"], ["drifted", "num"], ["unreported", "num"], ["stale", "num"]],
    [],
    { dataset: { testid: "drift-envs" } },
  );
  const problems = scrollTable(
    "drift problems",
    ["env", "host", "service", "problem", "wanted build", "reported build", "reported (UTC)", ["gen", "num"]],
    [],
    { dataset: { testid: "drift-problems" } },
  );
  const count = h("span", { class: "hint", dataset: { testid: "drift-count" } });
  const empty = h("p", { class: "hint", hidden: true }, "No host differs from its manifest.");
  const pager = h("nav", { class: "pager", "aria-label": "drift pages", dataset: { testid: "drift-pager" } });
  const summary = panel(
    { id: "drift-envs-panel", title: "Drift", hint: "hosts' own reports against their generation's manifest" },
    form,
    envs,
  );
  const list = panel({ id: "drift-problems-panel", title: "Problems" }, problems, empty, pager);
  list.querySelector(".panel-head").append(count);
  return { nodes: [summary, list], envs, problems, count, empty, pager };
}

function envRow(row) {
  return h(
    "tr",
    { dataset: { env: row.env, drifted: row.drifted, hosts: row.hosts } },
    h("td", {}, link(envHref(row.env), row.env)),
    h("td", { class: "num" }, row.generation ? generationLink(row.env, row.generation) : "–"),
    ...[row.hosts, row.reported, row.matching, row.drifted, row.unreported, row.stale].map((n) =>
      h("td", { class: "num" }, formatCount(n)),
    ),
  );
}

function problemRow(row) {
  const where = { generation: row.generation, host: row.host };
  return h(
    "tr",
    { dataset: { env: row.env, host: row.host, problem: row.problem } },
    h("td", {}, link(envHref(row.env), row.env)),
    h("td", { class: "nowrap" }, hostLink(row.env, row.host)),
    h("td", {}, serviceLink(row.env, row.service, where)),
    h("td", {}, row.problem, row.stale ? h("span", { class: "hint" }, " (stale report)") : null),
    h("td", {}, buildLink(row.env, row.desired_build, where)),
    h("td", {}, buildLink(row.env, row.reported_build, { host: row.host })),
    h("td", { class: "time" }, formatTime(row.reported_at)),
    h("td", { class: "num" }, row.generation ? generationLink(row.env, row.generation) : "–"),
  );
}
