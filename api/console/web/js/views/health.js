// Network health: /api/health's score, its rules with thresholds, and the items that crossed a threshold,
// grouped globally or by node, namespace or workload; an item links to its traffic in the flow table.
import { get, commonParams, ApiError } from "../api.js";
import { state } from "../state.js";
import { el } from "../format.js";
import { fieldKeys } from "./topology.js";

const SEVERITY = ["critical", "warning", "info"];

function groupChips(group) {
  return Object.entries(group || {}).filter(([, v]) => v != null && v !== "").map(([k, v]) => {
    // Labels come as flow field names: SrcK8S_Namespace keeps its side, K8S_Namespace matches either.
    const key = /^(Src|Dst)/.test(k) ? k : fieldKeys(k).common;
    return { key, op: "=", values: [`"${v}"`] };
  });
}

export function mount(root, ctx) {
  const set = (k, v) => { state.opts[k] = v; ctx.navigate(); };
  const groupBy = () => state.opts.groupBy || "global";
  const body = el("div", { class: "health", id: "health" });
  root.append(el("div", { class: "view-controls" }, el("label", {}, "Group by ", el("select", {
    id: "health-group", onchange: (e) => set("groupBy", e.target.value) },
  ["global", "node", "namespace", "workload"].map((g) => el("option", { value: g, selected: g === groupBy() }, g))))), body);

  async function refresh(isCurrent) {
    const p = commonParams();
    p.set("groupBy", groupBy());
    let res;
    try {
      res = await get("/api/health", p);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (!isCurrent()) return;
      body.replaceChildren(el("div", { class: e.notAvailable ? "unavailable" : "error", id: "health-message" },
        e.notAvailable ? "Not available: this flowlake API does not serve /api/health." : `Error: ${e.message}`));
      ctx.hook.health = { status: e.notAvailable ? "unavailable" : "error", error: e.message };
      return;
    }
    if (!isCurrent()) return;
    const score = Math.round(res.score);
    const level = score >= 90 ? "good" : score >= 70 ? "fair" : "poor";
    const bySeverity = Object.fromEntries(SEVERITY.map((s) => [s, res.items.filter((i) => i.severity === s)]));
    body.replaceChildren(
      el("div", { class: "score-row" },
        el("div", { class: `score ${level}`, id: "health-score", "data-score": String(res.score) }, el("span", {}, String(score)), el("small", {}, "/ 100")),
        el("ul", { class: "counts" }, SEVERITY.map((s) => el("li", { class: `sev ${s}`, "data-severity": s }, `${bySeverity[s].length} ${s}`)))),
      el("h3", {}, "Violations"),
      res.items.length ? el("table", { class: "flows", id: "health-items" },
        el("thead", {}, el("tr", {}, ["Severity", "Rule", "Group", "Value", "Threshold", "Message", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, [...res.items].sort((a, b) => SEVERITY.indexOf(a.severity) - SEVERITY.indexOf(b.severity)).map((i) => el("tr", { "data-rule": i.rule },
          el("td", {}, el("span", { class: `sev ${i.severity}` }, i.severity)), el("td", {}, i.rule),
          el("td", {}, Object.entries(i.group || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "global"),
          el("td", {}, typeof i.value === "number" ? i.value.toPrecision(4) : String(i.value)),
          el("td", {}, String(i.threshold)), el("td", {}, i.message),
          el("td", {}, el("button", { class: "link", onclick: () => { state.chips.push(...groupChips(i.group)); state.view = "table"; ctx.navigate(); } }, "Show flows"))))))
        : el("p", { class: "empty" }, "No rule crossed a threshold in this time range."),
      el("h3", {}, "Rules"),
      el("table", { class: "flows", id: "health-rules" }, el("thead", {}, el("tr", {}, ["Rule", "Description", "Info", "Warning", "Critical"].map((h) => el("th", {}, h)))),
        el("tbody", {}, res.rules.map((r) => el("tr", {}, el("td", {}, r.name), el("td", {}, r.description),
          SEVERITY.slice().reverse().map((s) => el("td", {}, r.thresholds?.[s] ?? "–")))))));
    ctx.hook.health = { status: "ready", score: res.score, items: res.items, rules: res.rules };
  }

  return { refresh, update() {} };
}
