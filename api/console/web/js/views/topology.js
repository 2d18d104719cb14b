// Topology: /api/topology drawn with cytoscape (vendored by `make console`). Scopes cluster > zone > host >
// namespace > owner > resource, optional groups (compound nodes), a side panel with the selected node's
// fields, traffic in and out over time and its peers, and "step into" (its fields become filters, one scope deeper).
import cytoscape from "../../vendor/cytoscape.js";
import { get, commonParams, andFilter, ApiError } from "../api.js";
import { state, config, chipText } from "../state.js";
import { el, metricFormatter } from "../format.js";
import { timeseries } from "../charts.js";

const TYPES = ["Bytes", "Packets", "PktDropBytes", "PktDropPackets", "DnsLatencyMs", "TimeFlowRttNs", "Flows", "DnsFlows"];
const FUNCTIONS = ["sum", "rate", "avg", "max", "p90", "p99"];
const LAYOUTS = ["auto", "cose", "concentric", "circle", "grid", "breadthfirst"];

// A node field (K8S_Namespace) -> the filter key matching either side (namespace) and the per-side columns.
export function fieldKeys(field) {
  for (const [key, [src, dst]] of Object.entries(config.commonKeys)) {
    if (src === `Src${field}`) return { common: key, src, dst };
  }
  const f = config.byName[field];
  const key = f && f.filterId ? f.filterId : field;
  return { common: key, src: key, dst: key };
}

const exact = (v) => (v === "" || v == null ? '""' : `"${v}"`);

export function nodeChips(node) {
  return Object.entries(node.fields).map(([f, v]) => ({ key: fieldKeys(f).common, op: "=", values: [exact(v)] }));
}

function sideFilter(node, side) {
  return Object.entries(node.fields).map(([f, v]) => `${fieldKeys(f)[side]}=${exact(v)}`).join("&");
}

// Grouped graphs: each group's nodes on a circle, groups on a grid, so group boxes never overlap (cose,
// the force-directed layout, lets compound boxes overlap when many edges cross them).
function groupedPositions(nodes) {
  const byGroup = new Map();
  for (const n of nodes) {
    const g = n.group ?? "";
    if (!byGroup.has(g)) byGroup.set(g, []);
    byGroup.get(g).push(n.id);
  }
  const radius = (k) => (k === 1 ? 0 : Math.max(50, (k * 70) / (2 * Math.PI)));
  const cell = 2 * Math.max(...[...byGroup.values()].map((ids) => radius(ids.length))) + 160;
  const cols = Math.ceil(Math.sqrt(byGroup.size));
  const pos = {};
  [...byGroup.values()].forEach((ids, i) => {
    const cx = (i % cols) * cell, cy = Math.floor(i / cols) * cell, r = radius(ids.length);
    ids.forEach((id, k) => {
      const a = (2 * Math.PI * k) / ids.length;
      pos[id] = { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) };
    });
  });
  return pos;
}

function layoutOptions(name, nodes, grouped) {
  if (name === "auto" && grouped) {
    const pos = groupedPositions(nodes);
    return { name: "preset", positions: (n) => pos[n.id()], fit: true, padding: 20 };
  }
  return { name: name === "auto" ? "cose" : name, animate: false, padding: 20 };
}

export function mount(root, ctx) {
  const opt = (k, d) => state.opts[k] || d;
  const scopeDef = () => config.scopes.find((s) => s.id === opt("scope", "namespace")) || config.scopes[3];
  const set = (k, v) => { state.opts[k] = v; ctx.navigate(); };
  const select = (id, key, values, dflt, label) => {
    const cur = opt(key, dflt);
    const all = values.includes(cur) ? values : [...values, cur];  // a value set through the URL
    return el("label", {}, `${label} `, el("select", { id, onchange: (e) => set(key, e.target.value) },
      all.map((v) => el("option", { value: v, selected: v === cur }, v))));
  };
  // The graph keeps its drawing centred when the side panel opens or closes.
  const refit = () => { if (cy) { cy.resize(); cy.fit(undefined, 20); } };
  const hideSide = () => { side.hidden = true; refit(); };

  const controls = el("div", { class: "view-controls" });
  const graph = el("div", { class: "graph", id: "topology-graph" });
  const side = el("aside", { class: "side", id: "side-panel", hidden: true });
  const summary = el("span", { class: "summary", id: "topology-summary" });
  root.append(controls, el("div", { class: "topology" }, graph, side));
  let cy = null;
  let data = { nodes: [], edges: [] };

  function renderControls() {
    const s = scopeDef();
    controls.replaceChildren(
      select("topology-scope", "scope", config.scopes.map((x) => x.id), "namespace", "Scope"),
      select("topology-groups", "groups", s.groups, "none", "Groups"),
      select("topology-type", "type", TYPES, "Bytes", "Metric"),
      select("topology-function", "function", FUNCTIONS, "sum", "Function"),
      select("topology-top", "edges", ["10", "25", "50", "100", "200"], "50", "Top edges"),
      select("topology-layout", "layout", LAYOUTS, "auto", "Layout"),
      summary);
  }

  function draw(fmt) {
    cy?.destroy();
    const ids = new Set(data.nodes.map((n) => n.id));
    const groups = [...new Set(data.nodes.map((n) => n.group).filter((g) => g != null))];
    const weight = (n) => (n.in || 0) + (n.out || 0);
    const maxNode = Math.max(1, ...data.nodes.map(weight));
    const edges = data.edges.filter((e) => ids.has(e.source) && ids.has(e.target));
    const maxEdge = Math.max(1e-9, ...edges.map((e) => Math.abs(e.value)));
    const elements = [
      // A group is a coarser node id ("zone:eu-west-1a"); "zone:" holds the endpoints without a zone.
      ...groups.map((g) => ({ data: { id: `group:${g}`, label: g.replace(/^[a-z]+:/, "") || "unknown" }, classes: "group" })),
      ...data.nodes.map((n) => ({ data: { id: n.id, label: n.label, parent: n.group != null ? `group:${n.group}` : undefined,
        size: 24 + 36 * Math.sqrt(weight(n) / maxNode) }, classes: /:$/.test(n.id) ? "unknown" : "" })),
      ...edges.map((e) => ({ data: { id: `${e.source}→${e.target}`, source: e.source, target: e.target,
        label: fmt(e.value), width: 1 + 7 * (Math.abs(e.value) / maxEdge) } })),
    ];
    cy = cytoscape({
      // maxZoom: fitting a three-node graph would otherwise blow it up to the whole panel.
      container: graph, elements, maxZoom: 1.6, minZoom: 0.05,
      style: [
        { selector: "node", style: { label: "data(label)", width: "data(size)", height: "data(size)", "background-color": "#2b7bb9",
          "font-size": 10, "text-valign": "bottom", "text-margin-y": 4, color: "#222" } },
        { selector: "node.group", style: { "background-color": "#eef3f8", "border-color": "#9ab", "border-width": 1,
          "text-valign": "top", "font-weight": "bold", shape: "round-rectangle" } },
        { selector: "node.unknown", style: { "background-color": "#9aa7b4" } },
        { selector: "node:selected", style: { "background-color": "#e8a33d" } },
        { selector: "edge", style: { width: "data(width)", "line-color": "#9aa7b4", "target-arrow-color": "#9aa7b4",
          "target-arrow-shape": "triangle", "curve-style": "bezier", "font-size": 8, color: "#555",
          "text-rotation": "autorotate", "text-background-color": "#fff", "text-background-opacity": 0.8 } },
        { selector: "edge.labeled, edge:selected", style: { label: "data(label)" } },
        { selector: "edge.hot", style: { label: "data(label)", "line-color": "#e8a33d", "target-arrow-color": "#e8a33d" } },
      ],
      layout: layoutOptions(opt("layout", "auto"), data.nodes, groups.length > 0),
    });
    // Edge values: all of them on a small graph, else those of the node under the pointer.
    if (edges.length <= 30) cy.edges().addClass("labeled");
    cy.on("mouseover", "node", (ev) => ev.target.connectedEdges().addClass("hot"));
    cy.on("mouseout", "node", (ev) => ev.target.connectedEdges().removeClass("hot"));
    cy.on("tap", "node", (ev) => { if (!ev.target.hasClass("group")) showSide(ev.target.id()); });
    cy.on("tap", (ev) => { if (ev.target === cy && !side.hidden) hideSide(); });
    ctx.hook.topology = {
      scope: scopeDef().id, groups: opt("groups", "none"), nodes: data.nodes, edges: data.edges, cy,
      drawn: { nodes: cy.nodes().not(".group").map((n) => n.id()), groups: cy.nodes(".group").map((n) => n.id()),
        edges: cy.edges().map((e) => ({ source: e.source().id(), target: e.target().id() })) },
      select: showSide,
    };
    summary.textContent = `${data.nodes.length} nodes, ${edges.length} edges`;
    summary.dataset.nodes = String(data.nodes.length);
    summary.dataset.edges = String(edges.length);
  }

  async function showSide(id) {
    const node = data.nodes.find((n) => n.id === id);
    if (!node) return;
    const s = scopeDef();
    const type = opt("type", "Bytes"), fn = opt("function", "sum");
    const fmt = metricFormatter(type, fn);
    const peersOut = data.edges.filter((e) => e.source === id).sort((a, b) => b.value - a.value);
    const peersIn = data.edges.filter((e) => e.target === id).sort((a, b) => b.value - a.value);
    const label = (pid) => data.nodes.find((n) => n.id === pid)?.label ?? pid;
    const chart = el("div", { class: "side-chart", id: "side-chart" });
    side.replaceChildren(
      el("button", { class: "close", "aria-label": "close", onclick: hideSide }, "×"),
      el("h3", {}, node.label), el("p", { class: "muted" }, `${s.name} · ${node.id}`),
      el("table", { class: "kv" }, Object.entries(node.fields).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v ?? "")))),
      el("table", { class: "kv", id: "side-stats" }, el("tr", {}, el("th", {}, `In (${type} ${fn})`), el("td", { "data-value": node.in }, fmt(node.in))),
        el("tr", {}, el("th", {}, `Out (${type} ${fn})`), el("td", { "data-value": node.out }, fmt(node.out)))),
      el("div", { class: "actions" },
        s.stepInto ? el("button", { id: "step-into", onclick: () => {
          state.chips.push(...nodeChips(node).filter((c) => !state.chips.some((x) => chipText(x) === chipText(c))));
          state.opts.scope = s.stepInto;
          if (!(config.scopes.find((x) => x.id === s.stepInto)?.groups || []).includes(opt("groups", "none"))) delete state.opts.groups;
          ctx.navigate();
        } }, `Step into (${s.stepInto})`) : null,
        el("button", { id: "show-flows", onclick: () => {
          state.chips.push(...nodeChips(node));
          state.view = "table";
          ctx.navigate();
        } }, "Show flows")),
      el("h4", {}, "Traffic over time"), chart,
      el("h4", {}, "Top destinations"), el("ul", { class: "peers" }, peersOut.slice(0, 10).map((e) => el("li", {}, `${label(e.target)}: ${fmt(e.value)}`))),
      el("h4", {}, "Top sources"), el("ul", { class: "peers" }, peersIn.slice(0, 10).map((e) => el("li", {}, `${label(e.source)}: ${fmt(e.value)}`))));
    const wasHidden = side.hidden;
    side.hidden = false;
    side.dataset.node = id;
    cy?.nodes().unselect();
    cy?.getElementById(id).select();
    if (wasHidden) refit();
    try {
      const seriesFn = fn === "sum" ? "rate" : fn;  // a sum over time is a rate per step
      const q = (filter) => {
        const p = commonParams();
        p.set("filters", andFilter(p.get("filters") || "", filter));
        p.set("aggregateBy", "app"); p.set("type", type); p.set("function", seriesFn);
        return get("/api/flows/metrics", p);
      };
      const [out, inn] = await Promise.all([q(sideFilter(node, "src")), q(sideFilter(node, "dst"))]);
      const series = [];
      if (out.metrics[0]) series.push({ ...out.metrics[0], name: "out" });
      if (inn.metrics[0]) series.push({ ...inn.metrics[0], name: "in" });
      timeseries(chart, series, metricFormatter(type, seriesFn), { height: 160 });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      chart.replaceChildren(el("div", { class: e.notAvailable ? "unavailable" : "error" },
        e.notAvailable ? "Not available: this flowlake API does not serve /api/flows/metrics." : e.message));
    }
  }

  async function refresh(isCurrent) {
    const p = commonParams();
    p.set("scope", scopeDef().id);
    p.set("groups", opt("groups", "none"));
    p.set("type", opt("type", "Bytes"));
    p.set("function", opt("function", "sum"));
    p.set("top", opt("edges", "50"));
    let res;
    try {
      res = await get("/api/topology", p);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (!isCurrent()) return;
      cy?.destroy(); cy = null;
      graph.replaceChildren(el("div", { class: e.notAvailable ? "unavailable" : "error", id: "topology-message" },
        e.notAvailable ? "Not available: this flowlake API does not serve /api/topology." : `Error: ${e.message}`));
      ctx.hook.topology = { status: e.notAvailable ? "unavailable" : "error", error: e.message };
      return;
    }
    if (!isCurrent()) return;
    data = res;
    graph.replaceChildren();
    draw(metricFormatter(opt("type", "Bytes"), opt("function", "sum")));
    if (side.dataset.node && !side.hidden) showSide(side.dataset.node);
  }

  renderControls();
  return { refresh, update: renderControls, destroy() { cy?.destroy(); } };
}
