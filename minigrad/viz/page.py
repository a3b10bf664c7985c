"""The HTML page of ``minigrad.viz.to_html``: inline style and script, no network.

The script draws the graph in SVG from the layout ``page_data`` computed (layer = longest
path from the output, row = order within the layer), and steps through the backward pass:
each step lights one node, shows the gradient that reached it and its explain entry.
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font-family:Helvetica,Arial,sans-serif;margin:0;display:flex;height:100vh}
#left{flex:1;overflow:auto;border-right:1px solid #ccc}
#right{width:480px;padding:10px;overflow:auto;background:#fafafa}
pre{font-size:12px;white-space:pre-wrap}
.node rect{fill:#fff;stroke:#888;rx:6}
.node.leaf rect{fill:#eef6ff}
.node.done rect{fill:#e9f8e9;stroke:#393}
.node.current rect{fill:#ffe9a8;stroke:#c80;stroke-width:3}
.node text{font-size:11px;pointer-events:none}
.node{cursor:pointer}
.box rect{fill:#f4f0ff;stroke:#86c;stroke-dasharray:4 3}
path.edge{stroke:#999;fill:none;marker-end:url(#arrow)}
path.edge.hot{stroke:#c80;stroke-width:2}
button{font-size:14px;margin-right:4px}
</style></head><body>
<div id="left"><svg id="svg" xmlns="http://www.w3.org/2000/svg"></svg></div>
<div id="right">
<h3>__TITLE__</h3>
<div><button id="prev">&#9664; back</button><button id="next">step &#9654;</button>
<button id="reset">reset</button>
<label><input type="checkbox" id="collapse"> collapse modules</label></div>
<p>step <span id="step">-</span> of <span id="count"></span>: <b id="label"></b></p>
<p>gradient in: <code id="grad"></code></p>
<pre id="entry">Press "step" to walk the backward pass, or click a node.</pre>
</div>
<script>
const DATA = __DATA__;
const W = 150, H = 46, GX = 170, GY = 80;
let current = -1;
const svg = document.getElementById("svg");
const NS = "http://www.w3.org/2000/svg";
function el(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  (parent || svg).appendChild(e);
  return e;
}
function groupOf(n) {
  if (!document.getElementById("collapse").checked || !n.module) return null;
  return n.module.split(".")[0];
}
function itemOf(n) {
  const g = groupOf(n);
  return g === null ? "n" + n.id : "m" + g;
}
function positions() {
  // collapsed modules become one item each; items are laid out in layers again by longest
  // path from the output (relaxed until stable: the contracted graph is small)
  const item = {}, members = {};
  for (const n of DATA.nodes) {
    item[n.id] = itemOf(n);
    (members[item[n.id]] = members[item[n.id]] || []).push(n.id);
  }
  const layer = {};
  for (const k in members) layer[k] = 0;
  const keys = Object.keys(members);
  for (let pass = 0; pass < keys.length; pass++) {
    let changed = false;
    for (const e of DATA.edges) {
      const a = item[e.from], b = item[e.to];
      if (a !== b && layer[b] < layer[a] + 1) { layer[b] = layer[a] + 1; changed = true; }
    }
    if (!changed) break;
  }
  const rows = {}, place = {};
  for (const n of DATA.nodes) {  // in the engine's order
    const k = item[n.id];
    if (place[k]) continue;
    const row = rows[layer[k]] || 0;
    rows[layer[k]] = row + 1;
    place[k] = {x: 20 + row * GX, y: 20 + layer[k] * GY};
  }
  const pos = {}, boxes = {};
  for (const n of DATA.nodes) {
    pos[n.id] = place[item[n.id]];
    const g = groupOf(n);
    if (g !== null) boxes[g] = {ids: members[item[n.id]]};
  }
  return [pos, boxes];
}
function draw() {
  svg.innerHTML = "";
  const defs = el("defs", {});
  const m = el("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
                          markerWidth: 6, markerHeight: 6, orient: "auto"}, defs);
  el("path", {d: "M0,0 L10,5 L0,10 z", fill: "#999"}, m);
  const [pos, boxes] = positions();
  let maxX = 0, maxY = 0;
  for (const e of DATA.edges) {
    const a = pos[e.from], b = pos[e.to];
    if (a === b) continue;
    const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y;
    // an edge that skips layers bends to the right, around the nodes between
    const far = Math.abs(b.y - a.y) > GY + 1;
    const bend = far ? Math.max(x1, x2) + W / 2 + 20 * (b.y - a.y) / GY : null;
    const d = bend === null ? `M${x1},${y1} L${x2},${y2}` :
        `M${x1 + W / 4},${y1} C${bend},${y1 + GY / 2} ${bend},${y2 - GY / 2} ${x2 + W / 4},${y2}`;
    el("path", {d: d, class: "edge" + (e.from === current ? " hot" : "")});
  }
  const drawn = new Set();
  for (const n of DATA.nodes) {
    const g = groupOf(n), p = pos[n.id];
    maxX = Math.max(maxX, p.x + W); maxY = Math.max(maxY, p.y + H);
    if (g !== null) {
      if (drawn.has(g)) continue;
      drawn.add(g);
      const ids = boxes[g].ids;
      const cls = "node box" + (ids.includes(current) ? " current" :
                  ids.every(i => i <= current) ? " done" : "");
      const box = el("g", {class: cls, "data-module": g}, svg);
      el("rect", {x: p.x, y: p.y, width: W, height: H}, box);
      el("text", {x: p.x + 6, y: p.y + 18}, box).textContent = g;
      el("text", {x: p.x + 6, y: p.y + 34}, box).textContent = ids.length + " nodes (collapsed)";
      box.addEventListener("click", () => select(Math.max(...ids)));
      continue;
    }
    const cls = "node " + n.kind + (n.id === current ? " current" : n.id < current ? " done" : "");
    const gr = el("g", {class: cls, "data-id": n.id}, svg);
    el("rect", {x: p.x, y: p.y, width: W, height: H}, gr);
    const sh = n.shape.length ? " (" + n.shape.join("x") + ")" : "";
    el("text", {x: p.x + 6, y: p.y + 16}, gr).textContent = "[" + n.id + "] " + n.label + sh;
    if (n.module) el("text", {x: p.x + 6, y: p.y + 29}, gr).textContent = n.module;
    if (n.id <= current)
      el("text", {x: p.x + 6, y: p.y + 42}, gr).textContent = "g " + n.grad.slice(0, 26);
    gr.addEventListener("click", () => select(n.id));
  }
  svg.setAttribute("width", maxX + 20); svg.setAttribute("height", maxY + 20);
}
function select(k) {
  current = Math.max(-1, Math.min(DATA.nodes.length - 1, k));
  const n = DATA.nodes[current];
  document.getElementById("step").textContent = current < 0 ? "-" : current;
  document.getElementById("label").textContent = n && current >= 0 ? n.label : "";
  document.getElementById("grad").textContent =
      n && current >= 0 ? (n.grad_values ? JSON.stringify(n.grad_values) : n.grad) : "";
  document.getElementById("entry").textContent = n && current >= 0 ? n.text :
      'Press "step" to walk the backward pass, or click a node.';
  draw();
}
document.getElementById("count").textContent = DATA.nodes.length;
document.getElementById("next").onclick = () => select(current + 1);
document.getElementById("prev").onclick = () => select(current - 1);
document.getElementById("reset").onclick = () => select(-1);
document.getElementById("collapse").onchange = draw;
draw();
</script></body></html>
"""
