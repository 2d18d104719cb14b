// HTTP calls to the flowlake API: common parameters (time range, filters), the bearer token, and the
// three ways a call fails (400 with a message, 401 asking for a token, 404 = endpoint not available).
import { state, filterString } from "./state.js";

const TOKEN_KEY = "flowlake-token";

export class ApiError extends Error {
  constructor(message, status, parameter) {
    super(message);
    this.status = status;
    this.parameter = parameter;
  }
  // A 404/405 on an /api route means this server does not have the endpoint at all.
  get notAvailable() { return this.status === 404 || this.status === 405; }
}

export function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function headers() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

// The time range alone (startTime/endTime, or timeRange back from now).
export function timeParams() {
  const p = new URLSearchParams();
  if (state.start != null && state.end != null) {
    p.set("startTime", String(state.start));
    p.set("endTime", String(state.end));
  } else {
    p.set("timeRange", String(state.range));
  }
  return p;
}

// Time range, filters, packet loss and record type: the parameters every endpoint shares.
export function commonParams(extraFilter = "") {
  const p = timeParams();
  const f = andFilter(filterString(), extraFilter);
  if (f) p.set("filters", f);
  if (state.packetLoss !== "all") p.set("packetLoss", state.packetLoss);
  if (state.recordType !== "flowLog") p.set("recordType", state.recordType);
  return p;
}

// AND `extra` into every OR group of `base` (groups are separated by "|").
export function andFilter(base, extra) {
  if (!extra) return base;
  if (!base) return extra;
  return base.split("|").map((g) => `${g}&${extra}`).join("|");
}

export function url(path, params) {
  const q = params.toString();
  return q ? `${path}?${q}` : path;
}

let askToken = null;
export function onTokenNeeded(fn) { askToken = fn; }

export async function get(path, params = new URLSearchParams()) {
  const full = url(path, params);
  let resp;
  try {
    resp = await fetch(full, { headers: headers() });
  } catch (e) {
    throw new ApiError(`cannot reach the flowlake API (${e.message})`, 0, null);
  }
  if (resp.ok) return resp.json();
  let body = {};
  try { body = await resp.json(); } catch { /* not JSON: keep the status text */ }
  if (resp.status === 401 && askToken) {
    if (await askToken(body.error || "a token is needed")) return get(path, params);
  }
  const msg = body.error || body.detail || `${resp.status} ${resp.statusText}`;
  throw new ApiError(typeof msg === "string" ? msg : JSON.stringify(msg), resp.status, body.parameter);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
}

// Export: a plain link streams straight to disk; with a token (a header a link cannot carry) the
// file is fetched into memory and saved from there.
export async function download(path, params, filename) {
  const full = url(path, params);
  if (!token()) {
    const a = document.createElement("a");
    a.href = full;
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
    return;
  }
  const resp = await fetch(full, { headers: headers() });
  if (!resp.ok) {
    let body = {};
    try { body = await resp.json(); } catch { /* ignore */ }
    throw new ApiError(body.error || `${resp.status} ${resp.statusText}`, resp.status, body.parameter);
  }
  const blob = await resp.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  a.click();
  URL.revokeObjectURL(a.href);
}
