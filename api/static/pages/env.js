// #/env/ENV: one environment — its topology, the hosts that are not ok (every one, as
// links: the fleet page's "and N more" leads here), its generations and its latest
// failures. An env the ledger does not know is the API's 404, shown on the page.

import { getJSON } from "../api.js";
import { formatCount, h, healthBadge, keptView, panel, plural, scrollTable } from "../dom.js";
import { failureRow } from "../failures.js";
import { generationLink, hostLink } from "../router.js";
import { renderTopology } from "../topology.js";
import { renderTree } from "../tree.js";

const FAILURES_SHOWN = 20;
/** Every host that is not ok is listed: the API's largest page. */
const ATTENTION_LIMIT = 1000;

export async function render(container, route, context) {
  const { env } = route.params;
  const view = keptView(container, route.hash, () => build(env));
  const [summary, tree, failures] = await Promise.all([
    // Counted in the database, with every host that is not ok (an unknown env: 404).
    getJSON("api/topology/summary", { env, attention_limit: ATTENTION_LIMIT }),
    getJSON("api/generations/tree", { env }),
    getJSON("api/failures", { env, newest_first: true, limit: FAILURES_SHOWN }),
  ]);
  if (!context.isCurrent()) return;
  const mine = summary.envs.find((e) => e.env === env);
  const attention = mine ? mine.attention : { total: 0, hosts: [] };
  // The hosts that are not ok get a panel of their own below: not twice.
  const envs = summary.envs.map((e) => ({ ...e, attention: { total: 0, hosts: [] } }));
  renderTopology(view.topology, { ...summary, envs }, [env]);
  drawAttention(view, env, attention);
  renderTree(view.tree, tree);
  view.failures.querySelector("tbody").replaceChildren(...failures.items.map((f) => failureRow(f)));
  view.failuresEmpty.hidden = failures.items.length > 0;
  view.failuresCount.textContent = `newest first; ${plural(failures.total, "failure")} in all`;
}

function build(env) {
  const topology = h("div", { class: "env-topology", dataset: { testid: "env-topology" } });
  const attentionList = h("ul", { class: "attention-list", dataset: { testid: "attention" } });
  const attentionCount = h("span", { class: "hint" });
  const tree = h("div", { class: "page-tree", dataset: { testid: "env-tree" } });
  const failures = scrollTable(
    "failures",
    ["time (UTC)", "env", "host", "service", ["gen", "num"], "reason"],
    [],
    { class: "cards", dataset: { testid: "env-failures" } },
  );
  failures.classList.add("failures-scroll");
  const failuresEmpty = h("p", { class: "hint", hidden: true }, "No failure recorded.");
  const failuresCount = h("span", { class: "hint" });
  const head = panel(
    { id: "env-topology-panel", title: `Environment ${env}`, hint: "its topology" },
    topology,
  );
  const attentionPanel = panel(
    { id: "env-attention", title: "Hosts that are not ok" },
    attentionList,
  );
  attentionPanel.querySelector(".panel-head").append(attentionCount);
  const generations = panel(
    { id: "env-generations", title: "Generations", hint: "newest first", wide: false },
    tree,
  );
  const failuresPanel = panel(
    { id: "env-failures-panel", title: "Latest failures", wide: false },
    failures,
    failuresEmpty,
  );
  failuresPanel.querySelector(".panel-head").append(failuresCount);
  return {
    nodes: [head, attentionPanel, generations, failuresPanel],
    topology,
    attentionList,
    attentionCount,
    tree,
    failures,
    failuresEmpty,
    failuresCount,
  };
}

function drawAttention(view, env, attention) {
  view.attentionCount.textContent = attention.total
    ? `${plural(attention.total, "host")} at warning or critical, worst first`
    : "every host is ok or has no report";
  view.attentionList.replaceChildren(
    ...attention.hosts.map((host) =>
      h(
        "li",
        { dataset: { host: host.host, health: host.health } },
        hostLink(env, host.host),
        " ",
        healthBadge(`${host.health}${host.stale ? " (stale)" : ""}`),
        host.generation
          ? [" ", generationLink(env, host.generation, `gen ${host.generation}`)]
          : null,
      ),
    ),
  );
  if (attention.total > attention.hosts.length) {
    const more = attention.total - attention.hosts.length;
    view.attentionList.append(h("li", { class: "hint" }, `and ${formatCount(more)} more`));
  }
}
