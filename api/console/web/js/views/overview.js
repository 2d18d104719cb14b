// Overview: the reference console's overview panels (netobserv.md §5.4) — the top N distribution
// (a Sankey from /api/topology, overview_sankey.js), inbound traffic by region (overview_inbound.js), and
// from /api/flows/metrics top talkers, byte and packet rates with their total, drops by state and cause,
// DNS latency and response codes, RTT. Each panel queries on its own and shows its own error or "not
// available" state.
import { get, commonParams, ApiError } from "../api.js";
import { state } from "../state.js";
import { el, metricFormatter, seriesName } from "../format.js";
import { bars, timeseries } from "../charts.js";
import { SANKEY_PANEL } from "./overview_sankey.js";
import { INBOUND_PANEL } from "./overview_inbound.js";

// kind "bars": one bar per series total; "series": lines over time plus the total of all traffic.
// Panels with their own `fetch` and `draw` (and optional `controls`, `sync`, `help`) come first, as in
// the reference's default selection.
export const PANELS = [
  SANKEY_PANEL,
  INBOUND_PANEL,
  { id: "top_avg_byte_rates", title: "Top talkers: average byte rates", kind: "bars", type: "Bytes", fn: "rate" },
  { id: "byte_rates", title: "Byte rates (top N, with total)", kind: "series", type: "Bytes", fn: "rate", total: true },
  { id: "top_avg_packet_rates", title: "Top talkers: average packet rates", kind: "bars", type: "Packets", fn: "rate" },
  { id: "packet_rates", title: "Packet rates (top N, with total)", kind: "series", type: "Packets", fn: "rate", total: true },
  { id: "top_avg_dropped_packet_rates", title: "Top average dropped packet rates", kind: "bars", type: "PktDropPackets", fn: "rate" },
  { id: "dropped_packet_rates", title: "Dropped packet rates (top N, with total)", kind: "series", type: "PktDropPackets", fn: "rate", total: true },
  { id: "state_dropped_packet_rates", title: "Drops by TCP state", kind: "bars", type: "PktDropPackets", fn: "rate", by: "PktDropLatestState" },
  { id: "cause_dropped_packet_rates", title: "Drops by cause", kind: "bars", type: "PktDropPackets", fn: "rate", by: "PktDropLatestDropCause" },
  { id: "top_avg_dns_latency", title: "Top average DNS latency", kind: "bars", type: "DnsLatencyMs", fn: "avg" },
  { id: "top_p90_dns_latency", title: "Top P90 DNS latency", kind: "bars", type: "DnsLatencyMs", fn: "p90" },
  { id: "rcode_dns_latency_flows", title: "DNS response codes (flows)", kind: "bars", type: "DnsFlows", fn: "count", by: "DnsFlagsResponseCode" },
  { id: "name_dns_latency_flows", title: "DNS latency by name (average)", kind: "bars", type: "DnsLatencyMs", fn: "avg", by: "DnsName" },
  { id: "top_avg_rtt", title: "Top average TCP RTT", kind: "bars", type: "TimeFlowRttNs", fn: "avg" },
  { id: "top_p90_rtt", title: "Top P90 TCP RTT", kind: "bars", type: "TimeFlowRttNs", fn: "p90" },
  { id: "bottom_min_rtt", title: "Lowest minimum TCP RTT", kind: "bars", type: "TimeFlowRttNs", fn: "min", bottom: true },
];
const PANELS_KEY = "flowlake-overview-panels";
const SCOPES = ["cluster", "zone", "host", "namespace", "owner", "resource"];

function selected() {
  try {
    const saved = JSON.parse(localStorage.getItem(PANELS_KEY));
    if (Array.isArray(saved)) return new Set(saved);
  } catch { /* a bad saved value: use the defaults */ }
  return new Set(PANELS.map((p) => p.id));
}

export function metricsParams(type, fn, aggregateBy, top) {
  const p = commonParams();
  p.set("aggregateBy", aggregateBy);
  p.set("type", type);
  p.set("function", fn);
  if (top) p.set("top", String(top));
  return p;
}

export function mount(root, ctx) {
  const scope = () => state.opts.scope || "namespace";
  const top = () => Number(state.opts.top || 10);
  const cards = {};
  const set = (k, v) => { state.opts[k] = v; ctx.navigate(); };

  const header = el("div", { class: "view-controls" },
    el("label", {}, "Scope ", el("select", { id: "overview-scope", onchange: (e) => set("scope", e.target.value) },
      SCOPES.map((s) => el("option", { value: s, selected: s === scope() }, s)))),
    el("label", {}, "Top ", el("select", { id: "overview-top", onchange: (e) => set("top", e.target.value) },
      [5, 10, 15, 25].map((n) => el("option", { value: n, selected: n === top() }, n)))),
    el("details", { class: "manage" }, el("summary", {}, "Manage panels"),
      el("div", { class: "panel-list" }, PANELS.map((p) => el("label", {}, el("input", {
        type: "checkbox", checked: selected().has(p.id), "data-panel": p.id, onchange: (e) => {
          const s = selected();
          if (e.target.checked) s.add(p.id); else s.delete(p.id);
          localStorage.setItem(PANELS_KEY, JSON.stringify([...s]));
          build();
          refresh(() => true);
        } }), p.title)))));
  const grid = el("div", { class: "grid" });
  root.append(header, grid);

  function build() {
    grid.replaceChildren();
    const on = selected();
    for (const p of PANELS.filter((x) => on.has(x.id))) {
      const body = el("div", { class: "card-body" });
      const total = el("span", { class: "total" });
      const card = el("section", { class: `card ${p.kind === "series" || p.wide ? "wide" : ""}`, id: `panel-${p.id}`,
        "data-panel": p.id, "data-status": "loading" }, el("h3", {}, p.title, total),
      p.controls ? el("div", { class: "panel-controls" }, p.controls(set)) : null,
      p.help ? el("p", { class: "help" }, p.help) : null, body);
      cards[p.id] = { card, body, total };
      grid.append(card);
    }
  }

  async function loadPanel(p, isCurrent) {
    const c = cards[p.id];
    const fmt = metricFormatter(p.type, p.fn);
    const by = p.by || scope();
    const hookEntry = { status: "loading" };
    ctx.hook.overview[p.id] = hookEntry;
    c.card.dataset.status = "loading";
    try {
      if (p.fetch) {  // a panel that queries and draws itself
        const res = await p.fetch();
        if (!isCurrent()) return;
        Object.assign(hookEntry, { status: "ready" }, p.draw(c, res));
        c.card.dataset.status = "ready";
        return;
      }
      const [res, tot] = await Promise.all([
        get("/api/flows/metrics", metricsParams(p.type, p.fn, by, p.bottom ? 500 : top())),
        p.total ? get("/api/flows/metrics", metricsParams(p.type, p.fn, "app", 1)) : null]);
      if (!isCurrent()) return;
      let series = res.metrics;
      // The API ranks by largest total; the lowest N come from a wide query sorted the other way.
      if (p.bottom) series = [...series].sort((a, b) => a.total - b.total).slice(0, top());
      if (p.kind === "bars") bars(c.body, series, fmt);
      else timeseries(c.body, series, fmt, { total: tot && tot.metrics[0] ? tot.metrics[0] : null });
      const totalValue = tot ? (tot.metrics[0] ? tot.metrics[0].total : 0) : null;
      c.total.textContent = totalValue == null ? "" : `Total: ${fmt(totalValue)}`;
      if (totalValue != null) c.total.dataset.total = String(totalValue);
      Object.assign(hookEntry, { status: "ready", aggregateBy: by, total: totalValue,
        series: series.map((s) => ({ name: seriesName(s.metric), metric: s.metric, total: s.total })) });
      c.card.dataset.status = "ready";
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      const text = e.notAvailable
        ? `Not available: this flowlake API does not serve ${p.endpoint || "/api/flows/metrics"}.`
        : `Error: ${e.message}`;
      c.body.replaceChildren(el("div", { class: e.notAvailable ? "unavailable" : "error" }, text));
      c.total.textContent = "";
      c.card.dataset.status = e.notAvailable ? "unavailable" : "error";
      Object.assign(hookEntry, { status: c.card.dataset.status, error: e.message });
    }
  }

  async function refresh(isCurrent) {
    await Promise.all(PANELS.filter((p) => cards[p.id]?.card.isConnected).map((p) => loadPanel(p, isCurrent)));
  }

  build();
  function update() {
    header.querySelector("#overview-scope").value = scope();
    header.querySelector("#overview-top").value = String(top());
    for (const p of PANELS) if (p.sync && cards[p.id]?.card.isConnected) p.sync(cards[p.id].card);
  }

  return { refresh, update };
}
