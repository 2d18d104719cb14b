// A two-column Sankey diagram drawn as inline SVG (no library): sources on the left, destinations on
// the right, node heights and link widths proportional to their values on one shared scale. Used by the
// overview's "Top N distribution" panel (views/overview_sankey.js). Every node and link carries its
// numbers in data attributes (data-src, data-dst, data-bytes, ...) so tests read what was drawn.
import { el } from "./format.js";
import { color } from "./charts.js";

const NS = "http://www.w3.org/2000/svg";
const PAD = 8;       // above and below the columns
const GAP = 6;       // between two nodes of a column
const NODE_W = 12;
const SLOT = 16;     // least vertical room per node, so that two labels never overlap

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) e.setAttribute(k, String(v));
  for (const c of children) if (c != null) e.append(c);
  return e;
}

// Nodes of one side ("src" or "dst"): id, name, value (sum of its drawn links), largest first.
function column(links, side) {
  const byId = new Map();
  for (const l of links) {
    const id = l[side];
    const n = byId.get(id) || { id, name: l[`${side}Name`], side, value: 0, links: [] };
    n.value += l.value;
    n.links.push(l);
    byId.set(id, n);
  }
  return [...byId.values()].sort((a, b) => b.value - a.value || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function clip(text, px) {
  const max = Math.max(4, Math.floor(px / 7));  // ~7 px per character at 12 px
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// Draw `links` ([{src, dst, srcName, dstName, value}], in the order they should stack, largest first)
// into `root`; `fmt` formats a value. Returns {nodes, links} as drawn, or null when there is nothing.
export function sankey(root, links, fmt, { empty = "No data", unit = "bytes" } = {}) {
  root.replaceChildren();
  if (!links.length) {
    root.append(el("div", { class: "empty" }, empty));
    return null;
  }
  const left = column(links, "src"), right = column(links, "dst");
  const total = links.reduce((s, l) => s + l.value, 0);
  const width = Math.max(root.clientWidth || 0, 480);
  const target = Math.max(220, Math.min(560, Math.max(left.length, right.length) * 30));
  const labelW = Math.min(280, Math.floor(width * 0.3));
  const xl = labelW, xr = width - labelW - NODE_W;
  // One scale for both columns (the same bytes leave on the left and arrive on the right): the
  // column with more nodes, hence more gaps, decides it.
  const room = (col) => target - 2 * PAD - GAP * (col.length - 1);
  const scale = total > 0 ? Math.max(0, Math.min(room(left), room(right)) / total) : 0;
  // Same name on both sides (a namespace talking to itself): same colour.
  const colours = new Map();
  for (const n of [...left, ...right]) if (!colours.has(n.name)) colours.set(n.name, color(colours.size));

  // Small nodes take at least SLOT pixels, so a column may grow past the target height: the taller
  // column sets the drawing's height and the other is centred beside it.
  const extent = (col) => col.reduce((y, n) => y + Math.max(scale * n.value + GAP, SLOT), 0) - GAP;
  const height = Math.ceil(Math.max(target, extent(left) + 2 * PAD, extent(right) + 2 * PAD));
  for (const col of [left, right]) {
    let y = (height - extent(col)) / 2;
    for (const n of col) {
      n.h = scale * n.value;
      n.y = y + Math.max(0, (SLOT - GAP - n.h) / 2);  // a small node sits in the middle of its slot
      y += Math.max(n.h + GAP, SLOT);
    }
  }
  // Where each link leaves its source and enters its target: stacked in the order of the other end,
  // so that bands do not cross at the nodes.
  const at = (nodes) => new Map(nodes.map((n) => [n.id, n]));
  const L = at(left), R = at(right);
  for (const n of left) {
    let off = 0;
    for (const l of [...n.links].sort((a, b) => R.get(a.dst).y - R.get(b.dst).y)) {
      l.w = scale * l.value;
      l.sy = n.y + off + l.w / 2;
      off += l.w;
    }
  }
  for (const n of right) {
    let off = 0;
    for (const l of [...n.links].sort((a, b) => L.get(a.src).y - L.get(b.src).y)) {
      l.ty = n.y + off + l.w / 2;
      off += l.w;
    }
  }

  const tip = el("div", { class: "sankey-tip", hidden: true });
  const show = (text) => (ev) => {
    const box = root.getBoundingClientRect();
    tip.textContent = text;
    tip.hidden = false;
    tip.style.left = `${Math.max(0, ev.clientX - box.left + 12)}px`;
    tip.style.top = `${Math.max(0, ev.clientY - box.top + 12)}px`;
  };
  const hide = () => { tip.hidden = true; };

  const x0 = xl + NODE_W, x1 = xr, xm = (x0 + x1) / 2;
  const linkEls = links.map((l) => {
    const text = `${l.srcName} → ${l.dstName}: ${fmt(l.value)}`;
    const path = svg("path", {
      class: "link", d: `M${x0},${l.sy} C${xm},${l.sy} ${xm},${l.ty} ${x1},${l.ty}`,
      stroke: colours.get(l.srcName), "stroke-width": Math.max(1, l.w),  // hairlines stay visible
      "data-src": l.src, "data-dst": l.dst, "data-src-name": l.srcName, "data-dst-name": l.dstName,
      [`data-${unit}`]: l.value, "data-width": l.w,
    }, svg("title", {}, text));
    path.addEventListener("mouseover", show(text));
    path.addEventListener("mousemove", show(text));
    path.addEventListener("mouseout", hide);
    return path;
  });
  const nodeEls = [...left, ...right].map((n) => {
    const isSrc = n.side === "src";
    const text = `${n.name} (${isSrc ? "source" : "destination"}): ${fmt(n.value)}`;
    const rect = svg("rect", {
      class: "node", x: isSrc ? xl : xr, y: n.y, width: NODE_W, height: Math.max(1, n.h), fill: colours.get(n.name),
      "data-node": n.id, "data-side": n.side, "data-name": n.name, [`data-${unit}`]: n.value, "data-height": n.h,
    }, svg("title", {}, text));
    rect.addEventListener("mouseover", show(text));
    rect.addEventListener("mouseout", hide);
    const label = svg("text", {
      x: isSrc ? xl - 6 : xr + NODE_W + 6, y: n.y + n.h / 2, "text-anchor": isSrc ? "end" : "start",
      "dominant-baseline": "middle", "data-node": n.id, "data-side": n.side,
    }, clip(n.name, labelW - 80), svg("tspan", { class: "value", dx: 6 }, fmt(n.value)), svg("title", {}, text));
    return svg("g", {}, rect, label);
  });
  root.append(el("div", { class: "sankey-wrap" }, svg("svg", {
    class: "sankey", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `${links.length} links from ${left.length} sources to ${right.length} destinations`,
  }, svg("g", { class: "links" }, ...linkEls), svg("g", { class: "nodes" }, ...nodeEls)), tip));
  const strip = (n) => ({ id: n.id, name: n.name, side: n.side, value: n.value });
  return { nodes: [...left, ...right].map(strip),
    links: links.map((l) => ({ src: l.src, dst: l.dst, srcName: l.srcName, dstName: l.dstName, value: l.value })) };
}
