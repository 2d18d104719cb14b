// Overview panel "Top N distribution" (the reference console's `top_sankey`, netobserv.md §5.4): the
// top N source -> destination links by bytes over the overview's range and filters, at a chosen scope,
// from GET /api/topology (function=sum, so a link's value is its bytes, reporters deduplicated as for
// every Bytes query), drawn as a Sankey diagram by ../sankey.js. Mounted by overview.js.
import { get, commonParams } from "../api.js";
import { state } from "../state.js";
import { el, si } from "../format.js";
import { sankey } from "../sankey.js";

const SCOPES = ["cluster", "zone", "host", "namespace", "owner", "resource"];
const TOPS = [5, 10, 20];
const scope = () => (SCOPES.includes(state.opts.sankeyScope) ? state.opts.sankeyScope : "namespace");
const top = () => (TOPS.includes(Number(state.opts.sankeyTop)) ? Number(state.opts.sankeyTop) : 10);
const fmt = (v) => si(v, "B");

// "namespace:shop" -> "shop", "owner:shop/Deployment/cart" -> "shop/Deployment/cart"; endpoints
// without a value at the scope (external addresses at namespace scope) are the API's "unknown" node.
function nodeName(id) {
  const value = id.slice(id.indexOf(":") + 1);
  return value || "unknown";
}

export const SANKEY_PANEL = {
  id: "top_sankey",
  title: "Top N distribution",
  wide: true,
  endpoint: "/api/topology",
  help: "The N largest source → destination links by bytes in the time range (the topology's edges at "
    + "the chosen scope, each flow counted once); node height = the bytes of its drawn links.",

  controls(set) {
    return [
      el("label", {}, "Scope ", el("select", { id: "sankey-scope", onchange: (e) => set("sankeyScope", e.target.value) },
        SCOPES.map((s) => el("option", { value: s, selected: s === scope() }, s)))),
      el("label", {}, "N ", el("select", { id: "sankey-top", onchange: (e) => set("sankeyTop", e.target.value) },
        TOPS.map((n) => el("option", { value: n, selected: n === top() }, n)))),
    ];
  },

  sync(card) {
    card.querySelector("#sankey-scope").value = scope();
    card.querySelector("#sankey-top").value = String(top());
  },

  fetch() {
    const p = commonParams();
    p.set("scope", scope());
    p.set("type", "Bytes");
    p.set("function", "sum");
    p.set("top", String(top()));
    return get("/api/topology", p);
  },

  // Draws the answer of fetch(); returns what the test hook shows.
  draw(c, res) {
    const links = res.edges.map((e) => ({ src: e.source, dst: e.target, srcName: nodeName(e.source),
      dstName: nodeName(e.target), value: e.value }));
    const drawn = sankey(c.body, links, fmt, { empty: "No flows in this range" });
    const sum = links.reduce((s, l) => s + l.value, 0);
    c.total.textContent = links.length ? `${links.length} links: ${fmt(sum)}` : "";
    c.total.dataset.total = String(sum);
    return { scope: scope(), top: top(), limitReached: res.stats.limitReached,
      links: drawn ? drawn.links : [], nodes: drawn ? drawn.nodes : [] };
  },
};
