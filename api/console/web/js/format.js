// Number, unit, time and label formatting shared by the views.

const SI = ["", "k", "M", "G", "T", "P"];

export function si(v, unit = "", base = 1000) {
  if (v == null || Number.isNaN(v)) return "–";
  let i = 0, x = Math.abs(v);
  while (x >= base && i < SI.length - 1) { x /= base; i++; }
  const n = (v < 0 ? -x : x);
  // Three significant digits without trailing zeros: 0.005, 1.5, 31.6, 400.
  const text = Math.abs(n) >= 100 ? n.toFixed(0) : String(Number(n.toPrecision(3)));
  return `${text} ${SI[i]}${unit}`.trim();
}

export function duration(ns) {
  if (ns == null) return "–";
  const p = (x) => String(Number(x.toPrecision(3)));
  if (ns >= 1e9) return `${p(ns / 1e9)} s`;
  if (ns >= 1e6) return `${p(ns / 1e6)} ms`;
  if (ns >= 1e3) return `${p(ns / 1e3)} µs`;
  return `${p(ns)} ns`;
}

// Unit of a metric value by (type, function): rates per second, counts plain, latencies as durations.
export function metricFormatter(type, fn) {
  if (type === "DnsLatencyMs") return (v) => duration(v * 1e6);
  if (type === "TimeFlowRttNs") return (v) => duration(v * 1e6);  // the API answers RTT in ms, as the reference
  const unit = { Bytes: "B", PktDropBytes: "B", Packets: "pkt", PktDropPackets: "pkt", Flows: "flows",
    DnsFlows: "flows" }[type] || "";
  return (v) => si(v, fn === "rate" ? `${unit}/s` : unit);
}

export function time(ms) {
  if (ms == null) return "–";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

const PROTO = { 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP" };
const DIRECTION = { 0: "ingress", 1: "egress", 2: "inner" };

// A flow field's value as shown in a table cell.
export function cell(name, v) {
  if (v == null) return "";
  if (name === "TimeFlowStartMs" || name === "TimeFlowEndMs") return time(v);
  if (name === "TimeReceived") return time(v * 1000);
  if (name === "Bytes" || name === "PktDropBytes") return si(v, "B");
  if (name === "Proto") return PROTO[v] || String(v);
  if (name === "FlowDirection") return DIRECTION[v] ?? String(v);
  if (name === "TimeFlowRttNs" || name === "MaxTimeFlowRttNs") return duration(v);
  if (name === "DnsLatencyMs") return `${v} ms`;
  if (Array.isArray(v)) return v.join(", ");
  return String(v);
}

// Series labels {SrcK8S_Namespace: a, DstK8S_Namespace: b} -> "a → b"; missing values as "(none)".
export function seriesName(metric) {
  const keys = Object.keys(metric);
  if (!keys.length) return "Total";
  const side = (prefix) => keys.filter((k) => k.startsWith(prefix)).map((k) => metric[k] || "(none)");
  const src = side("Src"), dst = side("Dst");
  const other = keys.filter((k) => !k.startsWith("Src") && !k.startsWith("Dst")).map((k) => metric[k] ?? "(none)");
  const parts = [];
  if (other.length) parts.push(other.join(" / "));
  if (src.length || dst.length) parts.push(`${src.join(" / ")} → ${dst.join(" / ")}`);
  return parts.join(" ");
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null) e.append(c instanceof Node ? c : String(c));
  return e;
}
