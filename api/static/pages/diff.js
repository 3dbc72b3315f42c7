// #/diff/ENV/A/B: what changed from generation A to B (GET api/diff): the services
// added, removed or changed (with their builds), and the closure changes down to the
// packages. Each generation links to its page, each package to its own; renderDiff is
// also the generation page's "against its parent".

import { getJSON } from "../api.js";
import { formatCount, h, keptView, panel, plural, scrollTable } from "../dom.js";
import { buildLink, diffHref, generationLink, link, packageLink, serviceLink } from "../router.js";

/** Absent on one side of a closure change (the API's "∅"). */
const NOTHING = "∅";

export async function render(container, route, context) {
  const { env, a, b } = route.params;
  const view = keptView(container, route.hash, () => build(env, a, b));
  const diff = await getJSON("api/diff", { env, a, b });
  if (!context.isCurrent()) return;
  renderDiff(view.body, diff);
}

function build(env, a, b) {
  const body = h("div", { class: "diff", dataset: { testid: "diff" } });
  const intro = panel(
    { id: "diff-panel", title: `${env}: generation #${a} → #${b}` },
    h(
      "p",
      { class: "diff-ends" },
      "from ",
      generationLink(env, a, `generation #${a}`),
      " to ",
      generationLink(env, b, `generation #${b}`),
      " · ",
      link(diffHref(env, b, a), "the other way round"),
    ),
    body,
  );
  return { nodes: [intro], body };
}

/**
 * A diff's services and closure changes, as two tables (each scrolling inside its panel
 * when wider), into `container`.
 */
export function renderDiff(container, diff) {
  const { env } = diff;
  const from = diff.from;
  const to = diff.to;
  const services = diff.services.map((change) => {
    const side = change.change === "removed" ? from : to;
    return h(
      "tr",
      { dataset: { service: change.service, change: change.change } },
      h("td", {}, serviceLink(env, change.service, { generation: side })),
      h("td", { class: `change change-${change.change}` }, changeText(change.change)),
      h("td", {}, buildLink(env, change.from_build, { generation: from })),
      h("td", {}, buildLink(env, change.to_build, { generation: to })),
      h("td", { class: "num" }, formatCount(change.hosts)),
    );
  });
  const closure = diff.closure_changes.map((change) =>
    h(
      "tr",
      { dataset: { name: change.name } },
      h("td", {}, packageLink(change.name, { env }, change.name, { class: "mono" })),
      h("td", { class: "mono" }, version(env, change.name, change.from)),
      h("td", { class: "mono" }, version(env, change.name, change.to)),
      h(
        "td",
        {},
        change.services.map((service) => serviceLink(env, service, { generation: to })),
      ),
      h("td", { class: "num" }, formatCount(change.hosts)),
    ),
  );
  container.replaceChildren(
    h("h3", {}, `Services: ${plural(diff.services.length, "change")}`),
    diff.services.length
      ? scrollTable(
          "service changes",
          ["service", "change", `build in #${from}`, `build in #${to}`, ["hosts", "num"]],
          services,
          { class: "diff-services", dataset: { testid: "diff-services" } },
        )
      : h("p", { class: "hint" }, "No service changed."),
    h("h3", {}, `Closures: ${plural(diff.closure_changes.length, "package change")}`),
    diff.closure_changes.length
      ? scrollTable(
          "closure changes",
          ["package", `in #${from}`, `in #${to}`, "services", ["hosts", "num"]],
          closure,
          { class: "diff-closure", dataset: { testid: "diff-closure" } },
        )
      : h("p", { class: "hint" }, "No package changed in any closure."),
  );
}

function changeText(change) {
  return { added: "+ added", removed: "− removed", changed: "~ changed" }[change] ?? change;
}

/** A version, linking to where that version of the package runs in the env. */
function version(env, name, text) {
  if (!text || text === NOTHING) return h("span", { class: "hint", title: "not there" }, NOTHING);
  return packageLink(name, { env, range: `==${text}` }, text);
}
