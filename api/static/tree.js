// The generation tree panel: per env, newest first, like `git log --graph`: a line of
// generations each planned from the one below it (the trunk), and any generation
// planned from an older one (a branch) nested under the generation it left from.
// Rollbacks show their target; failed generations show their failure. Every generation
// links to its page.

import { formatShortTime, formatTime, h } from "./dom.js";
import { envHref, generationLink, link } from "./router.js";

export function renderTree(container, roots) {
  const byEnv = new Map();
  for (const root of roots) {
    if (!byEnv.has(root.env)) byEnv.set(root.env, []);
    byEnv.get(root.env).push(root);
  }
  const envs = [...byEnv.keys()].sort();
  container.replaceChildren(
    ...envs.map((env) => {
      const envRoots = byEnv.get(env);
      const newest = newestIn(envRoots);
      const total = countNodes(envRoots);
      envRoots.sort((a, b) => newest.get(b) - newest.get(a));
      return h(
        "section",
        { class: "tree-env", dataset: { env, testid: `tree-${env}` } },
        h(
          "h3",
          {},
          link(envHref(env), env),
          " ",
          h("span", { class: "counts" }, `${total} generations`),
        ),
        envRoots.map((root) => renderLine(root, newest)),
      );
    }),
  );
}

/** The newest generation number under each node (itself included), iteratively: a long
 * history is a deep tree. */
function newestIn(roots) {
  const newest = new Map();
  const stack = roots.map((node) => [node, false]);
  while (stack.length) {
    const [node, visited] = stack.pop();
    if (visited) {
      newest.set(node, Math.max(node.number, ...node.children.map((c) => newest.get(c))));
    } else {
      stack.push([node, true], ...node.children.map((c) => [c, false]));
    }
  }
  return newest;
}

function countNodes(roots) {
  let count = 0;
  const stack = [...roots];
  while (stack.length) {
    const node = stack.pop();
    count += 1;
    stack.push(...node.children);
  }
  return count;
}

/** A line from `start`: each step goes to the child with the newest descendants; the
 * other children are branches. Rendered newest first. */
function renderLine(start, newest) {
  const line = [];
  for (let node = start; node; ) {
    const children = [...node.children].sort((a, b) => newest.get(b) - newest.get(a));
    line.push({ node, branches: children.slice(1) });
    node = children[0];
  }
  line.reverse();
  return h(
    "ol",
    { class: "gens" },
    line.map(({ node, branches }) => {
      const nested = branches.map((branch) => renderLine(branch, newest));
      return renderNode(node, nested.length ? h("div", { class: "branch" }, nested) : null);
    }),
  );
}

function renderNode(node, branches) {
  const failed = node.status === "failed" || node.bad || Boolean(node.failure);
  const classes = ["gen", `status-${slug(node.status)}`];
  if (failed) classes.push("is-failed");
  if (node.reason === "rollback") classes.push("is-rollback");
  const when = `planned ${formatTime(node.planned_at)}, finished ${formatTime(node.finished_at)}`;
  return h(
    "li",
    {
      class: classes.join(" "),
      dataset: {
        env: node.env,
        number: node.number,
        reason: node.reason,
        status: node.status,
        bad: Boolean(node.bad),
      },
    },
    h(
      "div",
      { class: "gen-row" },
      generationLink(node.env, node.number, `#${node.number}`, {
        class: "num",
        "aria-label": `${node.env} generation ${node.number}`,
      }),
      h("span", { class: "meta", title: when }, formatShortTime(node.planned_at)),
      node.reason === "rollback"
        ? h(
            "span",
            { class: "badge rollback", title: `decided by ${node.actor ?? "?"}` },
            "↩ rollback to ",
            node.target ? generationLink(node.env, node.target) : "#?",
          )
        : h("span", { class: "badge reason" }, node.reason),
      h("span", { class: `badge status status-${slug(node.status)}` }, node.status),
      node.bad ? h("span", { class: "badge bad", title: "marked bad" }, "✗ bad") : null,
      node.rolled_back_by
        ? h(
            "span",
            { class: "note" },
            "→ rolled back by ",
            generationLink(node.env, node.rolled_back_by),
          )
        : null,
      (node.tags || []).map((tag) => h("span", { class: "tag" }, tag)),
    ),
    node.failure ? h("div", { class: "failure" }, node.failure) : null,
    branches,
  );
}

function slug(text) {
  return String(text || "unknown").toLowerCase().replace(/[^a-z0-9]+/g, "-");
}
