// #/package/NAME?at=&env=&range=: where a package runs (the fleet audit panel's answer,
// drawn by audit.js's WhereResult), now or at a moment, and its versions over time
// (charts.js). The question is the URL: the form navigates to the route of what it asks,
// so a search is a link to share; a refused question shows the API's message in place.

import { ApiError } from "../api.js";
import { WhereResult, askWhere, parseMoment } from "../audit.js";
import { drawChart, h, keptView, panel } from "../dom.js";
import { packageHref } from "../router.js";

export async function render(container, route, context) {
  const name = route.params.name;
  const asked = {
    name,
    range: route.query.get("range") || "",
    at: route.query.get("at") || "",
    env: route.query.get("env") || "",
  };
  const view = keptView(container, route.hash, () => build(asked, context.envs));
  view.load = () => render(container, route, context);
  const moment = parseMoment(asked.at);
  const question = { ...asked, at: moment.at ?? "" };
  view.at.setAttribute("aria-invalid", moment.error ? "true" : "false");
  const [answer] = await Promise.all([
    moment.error ? { refused: moment.error } : askWhere(question).catch(refusal),
    drawChart(view.chart, "renderVersionsOverTime", { name, env: asked.env || undefined }),
  ]);
  if (!context.isCurrent()) return;
  view.result.node.dataset.state = answer.refused ? "error" : "done";
  if (answer.refused) view.result.showError(answer.refused);
  else view.result.showAnswer(question, answer);
}

/** A question the API refused (unknown package, bad range) is said in place. */
function refusal(error) {
  if (error instanceof ApiError && error.status !== 401 && error.status !== 0) {
    return { refused: error.describe() };
  }
  throw error;
}

function build(asked, envs) {
  const field = (label, input) => h("label", {}, `${label} `, input);
  const name = h("input", {
    name: "name",
    value: asked.name,
    required: true,
    maxlength: "253",
    spellcheck: "false",
    size: "16",
  });
  const range = h("input", {
    name: "range",
    value: asked.range,
    placeholder: ">=1.0.1,<1.0.2",
    spellcheck: "false",
    class: "mono",
    size: "18",
  });
  const at = h("input", {
    name: "at",
    type: "text",
    value: asked.at,
    placeholder: "2026-01-10T14:30:00Z",
    spellcheck: "false",
    class: "mono",
    size: "21",
    maxlength: "25",
    "aria-invalid": "false",
    pattern: "\\d{4}-\\d{2}-\\d{2}([T ]\\d{2}:\\d{2}(:\\d{2})?)?([Zz]|[+\\-]00:?00)?",
    title: "a UTC time, 24-hour (2026-01-10T14:30:00Z) or a date (2026-01-10); empty: now",
  });
  const env = h(
    "select",
    { name: "env" },
    h("option", { value: "" }, "all"),
    envs.map((e) => h("option", { value: e }, e)),
  );
  env.value = envs.includes(asked.env) ? asked.env : "";
  const result = WhereResult.build();
  result.node.dataset.testid = "package-result";
  const form = h(
    "form",
    {
      class: "where-form",
      dataset: { testid: "package-form" },
      autocomplete: "off",
      novalidate: true,
    },
    field("package", name),
    field("versions", range),
    field("at (UTC, 24-hour)", at),
    field("env", env),
    h("button", { type: "submit" }, "search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const moment = parseMoment(at.value);
    at.setAttribute("aria-invalid", moment.error ? "true" : "false");
    if (moment.error) {
      result.showError(moment.error);
      return;
    }
    const target = packageHref(name.value.trim() || asked.name, {
      range: range.value.trim(),
      at: moment.at,
      env: env.value,
    });
    if (window.location.hash === target) view.load?.();
    else window.location.hash = target; // a new entry in the history: Back returns here
  });
  const chart = h("div", { class: "chart-holder" });
  const view = {
    result,
    chart,
    at,
    nodes: [
      panel(
        { id: "package-panel", title: `Where is ${asked.name}?`, hint: "now or at a past moment" },
        form,
        result.node,
      ),
      panel({ id: "package-chart", title: `${asked.name}: versions over time` }, chart),
    ],
  };
  return view;
}
