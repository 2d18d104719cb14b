// The console's state (view, time range, filters, refresh, per-view options), kept in the URL hash so a
// link or a reload shows the same page, and the filter string the API receives built from it.

export const state = {
  view: "overview",
  range: 3600,          // seconds back from now, used when start/end are null
  start: null,          // unix seconds, a custom range
  end: null,
  refresh: 0,           // auto-refresh period in seconds, 0 = off
  chips: [],            // [{key, op, values: [..]}]
  match: "all",         // all | any | bidirectional
  quick: null,          // names of the active quick filters; null = the configured defaults
  packetLoss: "all",
  recordType: "flowLog",
  opts: {},             // per-view options (scope, groups, ...), flat keys
};

export const config = { fields: [], byName: {}, byFilterId: {}, commonKeys: {}, quickFilters: [], columns: [],
  scopes: [] };

export function setConfig(c) {
  Object.assign(config, c);
  config.byName = Object.fromEntries(c.fields.map((f) => [f.name, f]));
  config.byFilterId = Object.fromEntries(c.fields.filter((f) => f.filterId).map((f) => [f.filterId, f]));
}

const OPS = ["!=", "!~", ">=", "<=", "=", "~", ">", "<"];

export function chipText(c) { return `${c.key}${c.op}${c.values.join(",")}`; }

export function parseChip(text) {
  const m = /^([A-Za-z0-9_.]+?)(!=|!~|>=|<=|=|~|>|<)(.*)$/.exec(text.trim());
  if (!m) return null;
  return { key: m[1], op: m[2], values: m[3] === "" ? [""] : splitValues(m[3]) };
}

// Split "a,b,\"c,d\"" on commas outside quotes.
function splitValues(s) {
  const out = [];
  let cur = "", quoted = false;
  for (const ch of s) {
    if (ch === '"') quoted = !quoted;
    if (ch === "," && !quoted) { out.push(cur); cur = ""; } else cur += ch;
  }
  out.push(cur);
  return out;
}

// Quick filter {key: "values"} -> chips; a trailing "!" on the key negates (the reference's syntax).
export function quickChips(qf) {
  return Object.entries(qf.filter).map(([k, v]) => (k.endsWith("!")
    ? { key: k.slice(0, -1), op: "!=", values: splitValues(v) }
    : { key: k, op: "=", values: splitValues(v) }));
}

export function activeQuick() {
  if (state.quick === null) return config.quickFilters.filter((q) => q.default);
  return config.quickFilters.filter((q) => state.quick.includes(q.name));
}

function swapSide(key) {
  if (key.startsWith("src_")) return `dst_${key.slice(4)}`;
  if (key.startsWith("dst_")) return `src_${key.slice(4)}`;
  if (key.startsWith("Src")) return `Dst${key.slice(3)}`;
  if (key.startsWith("Dst")) return `Src${key.slice(3)}`;
  return key;
}

// The `filters` parameter: chips and active quick filters ANDed (all), ORed (any), or ANDed plus the
// same with source and destination swapped (bidirectional), as the reference console's match modes.
export function filterString() {
  const chips = [...state.chips, ...activeQuick().flatMap(quickChips)];
  if (!chips.length) return "";
  const texts = chips.map(chipText);
  if (state.match === "any") return texts.join("|");
  const all = texts.join("&");
  if (state.match === "bidirectional") {
    const swapped = chips.map((c) => chipText({ ...c, key: swapSide(c.key) })).join("&");
    return swapped === all ? all : `${all}|${swapped}`;
  }
  return all;
}

export function toHash() {
  const p = new URLSearchParams();
  if (state.start != null) { p.set("start", state.start); p.set("end", state.end); } else p.set("range", state.range);
  if (state.refresh) p.set("refresh", state.refresh);
  if (state.chips.length) p.set("filters", state.chips.map(chipText).join("&"));
  if (state.match !== "all") p.set("match", state.match);
  if (state.quick !== null) p.set("quick", state.quick.join(","));
  if (state.packetLoss !== "all") p.set("packetLoss", state.packetLoss);
  if (state.recordType !== "flowLog") p.set("recordType", state.recordType);
  for (const [k, v] of Object.entries(state.opts)) if (v !== undefined && v !== "") p.set(k, v);
  return `#/${state.view}?${p}`;
}

const GLOBAL = new Set(["start", "end", "range", "refresh", "filters", "match", "quick", "packetLoss", "recordType"]);

export function fromHash(hash) {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?");
  const p = new URLSearchParams(query);
  state.view = ["overview", "topology", "table", "health"].includes(path) ? path : "overview";
  const start = p.get("start"), end = p.get("end");
  if (start && end) { state.start = Number(start); state.end = Number(end); }
  else { state.start = state.end = null; state.range = Number(p.get("range") || 3600); }
  state.refresh = Number(p.get("refresh") || 0);
  state.chips = (p.get("filters") || "").split("&").filter(Boolean).map(parseChip).filter(Boolean);
  state.match = p.get("match") || "all";
  state.quick = p.has("quick") ? p.get("quick").split(",").filter(Boolean) : null;
  state.packetLoss = p.get("packetLoss") || "all";
  state.recordType = p.get("recordType") || "flowLog";
  state.opts = {};
  for (const [k, v] of p) if (!GLOBAL.has(k)) state.opts[k] = v;
}

export { OPS };
