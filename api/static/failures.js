// The latest failed activations: a table, newest first. Rows that were not there at the
// previous refresh are highlighted for a moment.

import { formatTime, h } from "./dom.js";

/** The newest ledger position shown so far (null before the first render). */
let newestShown = null;

export function renderFailures(table, empty, failures) {
  const previous = newestShown;
  const isNew = (failure) => previous !== null && failure.position > previous;
  table.tBodies[0].replaceChildren(
    ...failures.map((failure) => {
      const detail = `${failure.problem} (position ${failure.position}, by ${failure.actor})`;
      return h(
        "tr",
        {
          class: isNew(failure) ? "fresh" : null,
          dataset: { position: failure.position, env: failure.env, host: failure.host ?? "" },
        },
        h("td", { class: "time", title: failure.occurred_at }, formatTime(failure.occurred_at)),
        h("td", { dataset: { label: "env" } }, failure.env),
        h("td", { class: "mono", dataset: { label: "host" } }, failure.host ?? "–"),
        h("td", { dataset: { label: "service" } }, failure.service ?? "–"),
        h("td", { class: "num", dataset: { label: "gen" } }, failure.generation ?? "–"),
        h("td", { class: "reason", title: detail }, failure.reason ?? failure.problem),
      );
    }),
  );
  newestShown = Math.max(previous ?? 0, ...failures.map((failure) => failure.position));
  empty.hidden = failures.length > 0;
}
