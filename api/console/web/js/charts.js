// Charts: time series drawn with uPlot (vendored by `make console`) and horizontal bar lists in plain HTML.
import uPlot from "../vendor/uplot.js";
import { el, seriesName } from "./format.js";

const COLORS = ["#2b7bb9", "#e8a33d", "#4caf50", "#d9534f", "#8e6bbf", "#20a8a8", "#c0679b", "#7f8c3a",
  "#b5651d", "#5b6c8f", "#aa3a3a", "#3a8f6a", "#6d6d6d", "#d4b000", "#1f5f8b"];

export function color(i) { return COLORS[i % COLORS.length]; }

// Prometheus-style matrix series -> one uPlot data table (union of timestamps, nulls where a series has no point).
function table(series) {
  const ts = [...new Set(series.flatMap((s) => s.values.map((v) => v[0])))].sort((a, b) => a - b);
  const index = new Map(ts.map((t, i) => [t, i]));
  const cols = series.map((s) => {
    const col = new Array(ts.length).fill(null);
    for (const [t, v] of s.values) col[index.get(t)] = v;
    return col;
  });
  return [ts, ...cols];
}

// Lines for `series` ({metric, values, total}) plus an optional dashed total line; returns the chart.
export function timeseries(root, series, fmt, { total = null, height = 220 } = {}) {
  // Auto-refresh redraws every panel: free the previous chart and its observer, or they pile up.
  root._chart?.destroy();
  root._observer?.disconnect();
  root._chart = root._observer = null;
  root.replaceChildren();
  const all = total ? [...series, { ...total, name: "Total" }] : series;
  if (!all.length || !all.some((s) => s.values.length)) {
    root.append(el("div", { class: "empty" }, "No data in this time range"));
    return null;
  }
  const opts = {
    width: Math.max(root.clientWidth || 400, 300),
    height,
    legend: { live: false },
    scales: { x: { time: true } },
    axes: [{}, { values: (u, vals) => vals.map(fmt), size: 84 }],
    series: [{}, ...all.map((s, i) => ({
      label: s.name || seriesName(s.metric),
      stroke: s.name === "Total" ? "#333" : color(i),
      dash: s.name === "Total" ? [6, 4] : undefined,
      width: s.name === "Total" ? 2 : 1.5,
      value: (u, v) => (v == null ? "–" : fmt(v)),
      spanGaps: false,
    }))],
  };
  const chart = new uPlot(opts, table(all), root);
  root._chart = chart;
  root._observer = new ResizeObserver(() => chart.setSize({ width: Math.max(root.clientWidth, 300), height }));
  root._observer.observe(root);
  return chart;
}

// Horizontal bars, one per series, sized by its total; `onPick(series)` on click.
export function bars(root, series, fmt, onPick = null) {
  root.replaceChildren();
  if (!series.length) {
    root.append(el("div", { class: "empty" }, "No data in this time range"));
    return;
  }
  const max = Math.max(...series.map((s) => Math.abs(s.total))) || 1;
  root.append(el("ol", { class: "bars" }, series.map((s, i) => {
    const name = seriesName(s.metric);
    return el("li", { title: name, "data-total": String(s.total), "data-name": name,
      onclick: onPick ? () => onPick(s) : null, class: onPick ? "pickable" : null },
    el("span", { class: "bar-label" }, name),
    el("span", { class: "bar-track" }, el("span", { class: "bar", style: `width:${(100 * Math.abs(s.total)) / max}%;background:${color(i)}` })),
    el("span", { class: "bar-value" }, fmt(s.total)));
  })));
}
