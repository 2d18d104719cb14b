// Entry point of the flowlake console: loads /api/frontend-config, then routes between the four views,
// keeps the time range / refresh controls and the URL hash in step, and exposes `window.__flowlake`
// (what each view last drew) for the browser tests.
import { state, config, setConfig, toHash, fromHash } from "./state.js";
import { get, onTokenNeeded, setToken } from "./api.js";
import { renderFilterBar } from "./filters.js";
import * as overview from "./views/overview.js";
import * as topology from "./views/topology.js";
import * as table from "./views/table.js";
import * as health from "./views/health.js";

const VIEWS = { overview, topology, table, health };
const hook = { state, config, loads: 0, status: "loading", overview: {}, topology: {}, table: {}, health: {} };
window.__flowlake = hook;

const $ = (id) => document.getElementById(id);
let current = null;     // {name, view}
let timer = null;
let generation = 0;     // a refresh started before the latest one must not overwrite it

function banner(text, kind = "error") {
  const b = $("banner");
  b.hidden = !text;
  b.className = `banner ${kind}`;
  b.textContent = text || "";
}

// Navigate: write the state to the hash (the hashchange handler does the rest).
export function navigate() {
  const h = toHash();
  if (location.hash === h) render(); else location.hash = h;
}

const ctx = { navigate, banner, hook };

function localInput(sec) {
  return new Date(sec * 1000).toISOString().slice(0, 19);
}

function syncControls() {
  const custom = state.start != null;
  $("range").value = custom ? "custom" : String(state.range);
  if ($("range").value === "" && !custom) {  // a range that is not a preset: show it as an extra option
    $("range").prepend(new Option(`Last ${state.range} s`, String(state.range)));
    $("range").value = String(state.range);
  }
  $("custom-range").hidden = !custom;
  if (custom) { $("start").value = localInput(state.start); $("end").value = localInput(state.end); }
  $("refresh").value = String(state.refresh);
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === state.view);
}

async function refresh() {
  if (!current) return;
  const mine = ++generation;
  document.body.dataset.status = hook.status = "loading";
  try {
    await current.view.refresh(() => mine === generation);
    if (mine !== generation) return;
    document.body.dataset.status = hook.status = "ready";
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (mine !== generation) return;
    console.error(e);
    banner(e.message);
    document.body.dataset.status = hook.status = "error";
  } finally {
    if (mine === generation) document.body.dataset.loads = String(++hook.loads);
  }
}

function schedule() {
  clearInterval(timer);
  timer = state.refresh ? setInterval(refresh, state.refresh * 1000) : null;
}

function render() {
  fromHash(location.hash);
  // Show the full state (defaults included) in the address bar, so the link reproduces this page.
  if (location.hash !== toHash()) history.replaceState(null, "", toHash());
  syncControls();
  banner(config.configError ? `console config: ${config.configError}` : "", "warning");
  renderFilterBar($("filterbar"), navigate);
  if (!current || current.name !== state.view) {
    current?.view.destroy?.();
    const root = $("view");
    root.replaceChildren();
    current = { name: state.view, view: VIEWS[state.view].mount(root, ctx) };
  } else {
    current.view.update?.();
  }
  schedule();
  refresh();
}

function wireControls() {
  $("range").addEventListener("change", (ev) => {
    if (ev.target.value === "custom") {
      const end = Math.floor(Date.now() / 1000);
      state.start = end - (state.range || 3600);
      state.end = end;
    } else {
      state.start = state.end = null;
      state.range = Number(ev.target.value);
    }
    navigate();
  });
  const custom = () => {
    const s = Date.parse(`${$("start").value}Z`) / 1000, e = Date.parse(`${$("end").value}Z`) / 1000;
    if (Number.isFinite(s) && Number.isFinite(e) && e > s) { state.start = s; state.end = e; navigate(); }
    else banner("the custom range needs a start before its end");
  };
  $("start").addEventListener("change", custom);
  $("end").addEventListener("change", custom);
  $("refresh").addEventListener("change", (ev) => { state.refresh = Number(ev.target.value); navigate(); });
  $("reload").addEventListener("click", () => refresh());
  for (const a of document.querySelectorAll("#tabs a")) {
    a.addEventListener("click", (ev) => { ev.preventDefault(); state.view = a.dataset.view; navigate(); });
  }
  // Parallel requests (the overview's panels) that all get a 401 share one dialog.
  let asking = null;
  onTokenNeeded((why) => asking || (asking = new Promise((resolve) => {
    const d = $("token-dialog");
    d.querySelector("p").textContent = `The flowlake API asks for a bearer token: ${why}`;
    d.returnValue = "";
    d.onclose = () => {
      const ok = d.returnValue === "ok" && $("token-input").value;
      if (ok) setToken($("token-input").value);
      $("token-input").value = "";
      asking = null;
      resolve(Boolean(ok));
    };
    d.showModal();
  })));
}

async function start() {
  wireControls();
  try {
    setConfig(await get("/api/frontend-config"));
    // Which endpoints this server has (an older or partial API may lack some): views say "not available".
    config.endpoints = await get("/openapi.json").then((o) => new Set(Object.keys(o.paths)), () => null);
  } catch (e) {
    banner(`cannot load the console configuration: ${e.message}`);
    document.body.dataset.status = "error";
    return;
  }
  window.addEventListener("hashchange", render);
  render();
}

start();
