// The filter bar shared by every view: quick filters, match mode, packet loss, record type, and filter chips
// added with a key / operator / value form whose values are suggested from /api/resources.
import { state, config, chipText, parseChip, OPS } from "./state.js";
import { get, timeParams, ApiError } from "./api.js";
import { el } from "./format.js";

const STATIC_VALUES = {
  kind: ["Pod", "Service", "Node"],
  owner_type: ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod", "Node"],
  flow_layer: ["app", "infra"],
  protocol: ["6", "17", "1", "58", "132"],
  node_direction: ["0", "1", "2"],
  dns_flag_response_code: ["NoError", "FormErr", "ServFail", "NXDomain", "NotImp", "Refused"],
  type: ["flowLog", "newConnection", "heartbeat", "endConnection"],
  tcp_flags: ["SYN", "ACK", "FIN", "RST", "PSH", "URG", "SYN_ACK", "FIN_ACK", "RST_ACK"],
};

// filter key -> the id without its side: src_namespace, SrcK8S_Namespace and namespace -> "namespace".
export function baseKey(key) {
  const f = config.byName[key];
  const id = f ? f.filterId : key;
  return (id || key).replace(/^(src|dst)_/, "");
}

function chipValue(base) {
  for (const c of state.chips) {
    if (c.op === "=" && baseKey(c.key) === base && c.values.length === 1) return c.values[0].replaceAll('"', "");
  }
  return "";
}

// Values for one key, from the API when it has a resource list for it, else a fixed list; [] when unknown.
export async function suggestions(key) {
  const base = baseKey(key);
  const simple = { namespace: "namespaces", cluster_name: "clusters", zone: "zones", host_name: "hosts" }[base];
  // Values seen in the chosen time range, whatever the other filters (they would hide the alternatives).
  const p = timeParams();
  try {
    if (simple) return await get(`/api/resources/${simple}`, p);
    if (base === "name" || base === "owner_name") {
      const kind = chipValue(base === "name" ? "kind" : "owner_type") || (base === "name" ? "Pod" : "Deployment");
      const ns = chipValue("namespace");
      if (ns) p.set("namespace", ns);
      return await get(`/api/resources/kinds/${encodeURIComponent(kind)}/names`, p);
    }
  } catch (e) {
    if (e instanceof ApiError) return [];  // autocomplete is a help, never an error
    throw e;
  }
  return STATIC_VALUES[base] || [];
}

function keyOptions() {
  const ids = config.fields.filter((f) => f.filterId).map((f) => f.filterId);
  const common = Object.keys(config.commonKeys);
  const names = config.fields.filter((f) => f.kind !== "unsupported").map((f) => f.name);
  return [...new Set([...common, ...ids, ...names])];
}

export function renderFilterBar(root, onChange) {
  root.replaceChildren();
  const quick = el("div", { class: "quick", "data-testid": "quick-filters" }, el("span", { class: "label" }, "Quick filters:"),
    config.quickFilters.map((q) => {
      const active = state.quick === null ? q.default : state.quick.includes(q.name);
      const title = Object.entries(q.filter).map(([k, v]) => `${k}=${v}`).join(" & ");
      return el("label", { class: `qf${active ? " on" : ""}`, title },
        el("input", { type: "checkbox", checked: active, "data-quick": q.name, onchange: (ev) => {
          const cur = state.quick === null ? config.quickFilters.filter((x) => x.default).map((x) => x.name) : [...state.quick];
          state.quick = ev.target.checked ? [...cur, q.name] : cur.filter((n) => n !== q.name);
          onChange();
        } }), q.name);
    }));
  const select = (id, value, options, set) => el("select", { id, onchange: (ev) => { set(ev.target.value); onChange(); } },
    options.map(([v, label]) => el("option", { value: v, selected: v === value }, label)));
  const opts = el("div", { class: "modes" },
    el("label", {}, "Match ", select("match", state.match, [["all", "all filters"], ["any", "any filter"],
      ["bidirectional", "both directions"]], (v) => { state.match = v; })),
    el("label", {}, "Drops ", select("packet-loss", state.packetLoss, [["all", "all flows"], ["hasDrops", "with drops"],
      ["dropped", "fully dropped"], ["sent", "without drops"]], (v) => { state.packetLoss = v; })),
    el("label", {}, "Records ", select("record-type", state.recordType, (config.recordTypes || ["flowLog"]).map((t) => [t, t]),
      (v) => { state.recordType = v; })));

  const keyList = el("datalist", { id: "filter-keys" }, keyOptions().map((k) => el("option", { value: k })));
  const valueList = el("datalist", { id: "filter-values" });
  const keyIn = el("input", { id: "filter-key", list: "filter-keys", placeholder: "key (namespace, dst_port, …)", size: 22 });
  const opIn = el("select", { id: "filter-op" }, OPS.map((o) => el("option", { value: o, selected: o === "=" }, o)));
  const valIn = el("input", { id: "filter-value", list: "filter-values", placeholder: "value (\"exact\", partial, a,b)", size: 26 });
  const err = el("span", { class: "error", id: "filter-error" });
  let loadedFor = null;
  const loadValues = async () => {
    const key = keyIn.value.trim();
    if (!key || key === loadedFor) return;
    loadedFor = key;
    const values = await suggestions(key);
    if (keyIn.value.trim() !== key) return;
    valueList.replaceChildren(...values.map((v) => el("option", { value: `"${v}"` })));
    valIn.dataset.suggestions = String(values.length);
    valIn.dataset.suggestionsFor = key;
  };
  keyIn.addEventListener("change", loadValues);
  valIn.addEventListener("focus", loadValues);
  const add = (ev) => {
    ev.preventDefault();
    const chip = parseChip(`${keyIn.value.trim()}${opIn.value}${valIn.value.trim()}`);
    if (!chip) { err.textContent = "write a key and a value, e.g. namespace = \"default\""; return; }
    err.textContent = "";
    state.chips.push(chip);
    keyIn.value = valIn.value = "";
    loadedFor = null;
    onChange();
  };
  const form = el("form", { class: "add-filter", onsubmit: add }, keyIn, opIn, valIn,
    el("button", { type: "submit", id: "filter-add" }, "Add filter"), err, keyList, valueList);
  const chips = el("div", { class: "chips", "data-testid": "filter-chips" },
    state.chips.map((c, i) => el("span", { class: "chip", "data-filter": chipText(c) }, chipText(c),
      el("button", { title: "remove", "aria-label": `remove ${chipText(c)}`, onclick: () => { state.chips.splice(i, 1); onChange(); } }, "×"))),
    state.chips.length ? el("button", { class: "link", id: "filter-clear", onclick: () => { state.chips = []; onChange(); } }, "Clear all") : null);
  root.append(el("div", { class: "row" }, form, opts), el("div", { class: "row" }, chips, quick));
}
