// Traffic flows: /api/flows as a table with configurable columns (saved in this browser), sorting,
// pagination over the fetched rows, a details panel per flow, and export of the same query via /api/export.
import { get, commonParams, download, ApiError } from "../api.js";
import { state, config } from "../state.js";
import { el, cell } from "../format.js";

const COLUMNS_KEY = "flowlake-table-columns";
const FORMATS = { csv: "csv", ndjson: "ndjson", parquet: "parquet", arrow: "arrow" };

function columns() {
  try {
    const saved = JSON.parse(localStorage.getItem(COLUMNS_KEY));
    if (Array.isArray(saved) && saved.length) return saved.filter((c) => config.byName[c]);
  } catch { /* a bad saved value: use the defaults */ }
  return config.columns.filter((c) => config.byName[c]);
}

export function mount(root, ctx) {
  const opt = (k, d) => state.opts[k] || d;
  const set = (k, v) => { state.opts[k] = v; ctx.navigate(); };
  let flows = [];
  let page = 0;
  const stats = el("span", { class: "summary", id: "table-stats" });
  const pager = el("div", { class: "pager", id: "pager" });
  const wrap = el("div", { class: "table-wrap" });
  const side = el("aside", { class: "side", id: "flow-details", hidden: true });
  const exportErr = el("span", { class: "error", id: "export-error" });

  const columnPicker = el("details", { class: "manage", id: "columns" }, el("summary", {}, "Columns"));
  function renderColumnPicker() {
    const on = new Set(columns());
    const byGroup = {};
    for (const f of config.fields) (byGroup[f.group || "Other"] ||= []).push(f);
    columnPicker.replaceChildren(columnPicker.firstChild, el("div", { class: "column-list" },
      el("button", { class: "link", id: "columns-reset", onclick: () => { localStorage.removeItem(COLUMNS_KEY); renderColumnPicker(); renderTable(); } }, "Restore defaults"),
      Object.entries(byGroup).map(([g, fs]) => el("fieldset", {}, el("legend", {}, g), fs.map((f) => el("label", { title: f.description },
        el("input", { type: "checkbox", checked: on.has(f.name), "data-column": f.name, onchange: (e) => {
          const cur = columns().filter((c) => c !== f.name);
          if (e.target.checked) cur.push(f.name);
          localStorage.setItem(COLUMNS_KEY, JSON.stringify(cur));
          renderTable();
        } }), f.name))))));
  }

  const formatSel = el("select", { id: "export-format" }, Object.keys(FORMATS).map((f) => el("option", { value: f }, f)));
  const controls = el("div", { class: "view-controls" },
    el("label", {}, "Limit ", el("select", { id: "table-limit", onchange: (e) => set("limit", e.target.value) },
      ["50", "100", "500", "1000"].map((n) => el("option", { value: n, selected: n === opt("limit", "100") }, n)))),
    el("label", {}, "Page size ", el("select", { id: "table-page-size", onchange: (e) => { state.opts.pageSize = e.target.value; page = 0; renderTable(); } },
      ["25", "50", "100"].map((n) => el("option", { value: n, selected: n === opt("pageSize", "50") }, n)))),
    columnPicker,
    el("span", { class: "export" }, formatSel, el("button", { id: "export", onclick: exportFlows, title: "download every flow matching the filters in the selected columns" }, "Export"), exportErr),
    stats);
  root.append(controls, el("div", { class: "table-area" }, wrap, side), pager);

  const exportMissing = config.endpoints && !config.endpoints.has("/api/export");
  if (exportMissing) {
    controls.querySelector("#export").disabled = true;
    exportErr.textContent = "Export not available: this flowlake API does not serve /api/export.";
  }

  async function exportFlows() {
    exportErr.textContent = "";
    const p = commonParams();
    const fmt = formatSel.value;
    p.set("format", fmt);
    p.set("columns", columns().join(","));
    // Every matching flow, not only the rows the table fetched (no limit).
    if (state.opts.sortBy) { p.set("sortBy", state.opts.sortBy); p.set("sortOrder", opt("sortOrder", "desc")); }
    ctx.hook.table.lastExport = `/api/export?${p}`;
    try {
      await download("/api/export", p, `flows.${FORMATS[fmt]}`);
    } catch (e) {
      exportErr.textContent = e.notAvailable ? "Not available: this flowlake API does not serve /api/export." : e.message;
    }
  }

  function sortBy(name) {
    if (state.opts.sortBy === name) state.opts.sortOrder = opt("sortOrder", "desc") === "desc" ? "asc" : "desc";
    else { state.opts.sortBy = name; state.opts.sortOrder = "desc"; }
    ctx.navigate();
  }

  function details(f) {
    side.replaceChildren(el("button", { class: "close", "aria-label": "close", onclick: () => { side.hidden = true; } }, "×"),
      el("h3", {}, "Flow details"),
      el("table", { class: "kv" }, Object.entries(f).filter(([, v]) => v != null).map(([k, v]) =>
        el("tr", {}, el("th", { title: config.byName[k]?.description || "" }, k), el("td", {}, cell(k, v))))));
    side.hidden = false;
  }

  function renderTable() {
    const cols = columns();
    const size = Number(opt("pageSize", "50"));
    const pages = Math.max(1, Math.ceil(flows.length / size));
    page = Math.min(page, pages - 1);
    const rows = flows.slice(page * size, (page + 1) * size);
    const arrow = (c) => (state.opts.sortBy === c ? (opt("sortOrder", "desc") === "desc" ? " ▼" : " ▲") : "");
    wrap.replaceChildren(el("table", { class: "flows", id: "flows-table" },
      el("thead", {}, el("tr", {}, cols.map((c) => el("th", { "data-column": c, title: config.byName[c]?.description, onclick: () => sortBy(c) }, c + arrow(c))))),
      el("tbody", {}, rows.map((f) => el("tr", { onclick: () => details(f) }, cols.map((c) => el("td", {
        "data-column": c, "data-value": f[c] == null ? "" : (Array.isArray(f[c]) ? JSON.stringify(f[c]) : String(f[c])) }, cell(c, f[c]))))))));
    if (!flows.length) wrap.append(el("div", { class: "empty" }, "No flows match in this time range"));
    pager.replaceChildren(
      el("button", { id: "page-prev", disabled: page === 0, onclick: () => { page--; renderTable(); } }, "‹ Previous"),
      el("span", { id: "page-info" }, `page ${page + 1} of ${pages} · rows ${flows.length ? page * size + 1 : 0}–${page * size + rows.length} of ${flows.length}`),
      el("button", { id: "page-next", disabled: page >= pages - 1, onclick: () => { page++; renderTable(); } }, "Next ›"));
    Object.assign(ctx.hook.table, { columns: cols, page, pages, pageSize: size, shown: rows });
  }

  async function refresh(isCurrent) {
    const p = commonParams();
    p.set("limit", opt("limit", "100"));
    if (state.opts.sortBy) { p.set("sortBy", state.opts.sortBy); p.set("sortOrder", opt("sortOrder", "desc")); }
    let res;
    try {
      res = await get("/api/flows", p);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (!isCurrent()) return;
      flows = [];
      renderTable();
      wrap.prepend(el("div", { class: "error", id: "table-message" }, e.message));
      stats.textContent = "";
      ctx.hook.table = { status: "error", error: e.message, rows: [] };
      return;
    }
    if (!isCurrent()) return;
    flows = res.flows;
    page = 0;
    const s = res.stats;
    stats.textContent = `${s.numRows} flows${s.limitReached ? " (limit reached)" : ""} · ${s.rowsScanned} rows scanned in ${s.filesScanned} files · ${s.queryTimeMs.toFixed(0)} ms`;
    stats.dataset.rows = String(s.numRows);
    ctx.hook.table = { status: "ready", rows: flows, stats: s };
    renderTable();
  }

  renderColumnPicker();
  return { refresh, update() {} };
}
