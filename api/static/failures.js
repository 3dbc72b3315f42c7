// The latest failed activations: a table, newest first. Rows that were not there at the
// previous refresh are highlighted for a moment. Env, host, service and generation
// link to their pages.

import { formatTime, h } from "./dom.js";
import { envHref, generationLink, hostLink, link, serviceLink } from "./router.js";

/** The newest ledger position shown so far (null before the first render). */
let newestShown = null;

export function renderFailures(table, empty, failures) {
  const previous = newestShown;
  const isNew = (failure) => previous !== null && failure.position > previous;
  table.tBodies[0].replaceChildren(
    ...failures.map((failure) => failureRow(failure, isNew(failure))),
  );
  newestShown = Math.max(previous ?? 0, ...failures.map((failure) => failure.position));
  empty.hidden = failures.length > 0;
}

/** A failure's row (a card when its table is narrow: style.css), as the fleet's panel
 * and the env and generation pages show it; `fresh` highlights it for a moment. */
export function failureRow(failure, fresh = false) {
  const detail = `${failure.problem} (position ${failure.position}, by ${failure.actor})`;
  const { env, host, generation } = failure;
  return h(
    "tr",
    {
      class: fresh ? "fresh" : null,
      dataset: { position: failure.position, env: failure.env, host: failure.host ?? "" },
    },
    h("td", { class: "time", title: failure.occurred_at }, formatTime(failure.occurred_at)),
    h("td", { dataset: { label: "env" } }, link(envHref(env), env)),
    h("td", { class: "mono", dataset: { label: "host" } }, host ? hostLink(env, host) : "–"),
    h(
      "td",
      { dataset: { label: "service" } },
      serviceLink(env, failure.service, { generation, host }),
    ),
    h(
      "td",
      { class: "num", dataset: { label: "gen" } },
      generationLink(env, generation, String(generation)),
    ),
    h("td", { class: "reason", title: detail }, failureText(failure)),
  );
}

/** An activation's failure is its reason; any other kind says what failed first ("drain
 * timed out: 10 still in flight after 30 s"). */
function failureText(failure) {
  if (failure.kind === "activation_failed" || !failure.reason) {
    return failure.reason ?? failure.problem;
  }
  return `${failure.problem}: ${failure.reason}`;
}
