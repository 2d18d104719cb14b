// Overview panel "Inbound traffic by region" (the reference console's `inbound_region`, netobserv.md
// §5.4): bytes entering the cluster's workloads and nodes, by where they come from — the source's zone
// for sources in the cluster, its subnet label (EXT:...) or "external" for sources outside it. Three
// GET /api/flows/metrics queries (function=sum): in-cluster sources by SrcK8S_Zone, the others by
// SrcSubnetLabel, and the total. Mounted by overview.js.
import { get, commonParams } from "../api.js";
import { el, si } from "../format.js";

// Inbound = the destination is in the cluster (has a Kubernetes identity) and the flow was reported by
// the destination's node: FlowDirection Ingress (0), or Inner (2: both ends on one node). These are the
// reports NetObserv's *_ingress_bytes_total metrics count, so each flow counts once.
export const INBOUND = 'FlowDirection=0,2&DstK8S_Type!=""';
const IN_CLUSTER = 'SrcK8S_Type!=""';
const OUTSIDE = 'SrcK8S_Type=""';
const TOP = 100;  // regions per kind; more is reported under the bars
const KINDS = {
  zone: { colour: "#2b7bb9", text: "zone" },
  cluster: { colour: "#8e6bbf", text: "in the cluster, no zone" },
  subnet: { colour: "#e8a33d", text: "subnet label" },
  external: { colour: "#d9534f", text: "external, no subnet label" },
};

function params(filter, aggregateBy, top) {
  const p = commonParams(filter);
  p.set("aggregateBy", aggregateBy);
  p.set("type", "Bytes");
  p.set("function", "sum");
  p.set("top", String(top));
  return p;
}

export const INBOUND_PANEL = {
  id: "inbound_region",
  title: "Inbound traffic by region",
  endpoint: "/api/flows/metrics",
  help: "Inbound: bytes of flows whose destination is in the cluster (a pod, node or service), as reported "
    + "by the destination's node (FlowDirection Ingress, or Inner when both ends share a node; what "
    + "NetObserv's ingress metrics count), each flow once. By source: its zone if it is in the cluster, "
    + "else its subnet label (EXT:…) or \"external\". Share = of all inbound bytes.",

  fetch() {
    return Promise.all([
      get("/api/flows/metrics", params(`${INBOUND}&${IN_CLUSTER}`, "SrcK8S_Zone", TOP)),
      get("/api/flows/metrics", params(`${INBOUND}&${OUTSIDE}`, "SrcSubnetLabel", TOP)),
      get("/api/flows/metrics", params(INBOUND, "app", 1)),
    ]);
  },

  draw(c, [zones, subnets, all]) {
    const rows = [
      ...zones.metrics.map((m) => ({ label: m.metric.SrcK8S_Zone || "in the cluster (no zone)",
        kind: m.metric.SrcK8S_Zone ? "zone" : "cluster", bytes: m.total })),
      ...subnets.metrics.map((m) => ({ label: m.metric.SrcSubnetLabel || "external",
        kind: m.metric.SrcSubnetLabel ? "subnet" : "external", bytes: m.total })),
    ].sort((a, b) => b.bytes - a.bytes || (a.label < b.label ? -1 : 1));
    const total = all.metrics[0] ? all.metrics[0].total : 0;
    for (const r of rows) r.share = total ? r.bytes / total : 0;
    c.total.textContent = rows.length ? `Total: ${si(total, "B")}` : "";
    c.total.dataset.total = String(total);
    c.body.replaceChildren();
    if (!rows.length) {
      c.body.append(el("div", { class: "empty" }, "No inbound flows in this range"));
    } else {
      c.body.append(el("ol", { class: "bars inbound" }, rows.map((r) => el("li", {
        title: `${r.label} (${KINDS[r.kind].text}): ${si(r.bytes, "B")}, ${(100 * r.share).toFixed(1)} % of inbound`,
        "data-name": r.label, "data-kind": r.kind, "data-bytes": String(r.bytes), "data-share": String(r.share) },
      el("span", { class: "bar-label" }, r.label),
      el("span", { class: "bar-track" }, el("span", { class: "bar",
        style: `width:${100 * r.share}%;background:${KINDS[r.kind].colour}` })),
      el("span", { class: "bar-value" }, `${si(r.bytes, "B")} · ${(100 * r.share).toFixed(1)} %`)))));
      const kinds = [...new Set(rows.map((r) => r.kind))];
      c.body.append(el("div", { class: "legend" }, kinds.map((k) => el("span", {},
        el("i", { style: `background:${KINDS[k].colour}` }), KINDS[k].text))));
    }
    if (zones.stats.limitReached || subnets.stats.limitReached) {
      c.body.append(el("p", { class: "muted" }, `Only the ${TOP} largest zones and subnet labels are listed.`));
    }
    return { total, bars: rows };
  },
};
