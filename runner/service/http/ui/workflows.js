// The dashboard's workflow views (#/workflows, #/wf/MACHINE, #/wf/MACHINE/ex/NAME), drawn from
// /ui/api/workflows (runner/service/http/dashboard_workflows.py). The graph is SVG built here:
// no layout library, nothing fetched beyond the runner. Loaded before app.js, whose helpers
// (el, api, fmtTime, main, cleanup) these functions use when they run.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
const OUTCOMES = ["succeeded", "failed", "caught", "running", "aborted", "not_reached"];

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

const fmtDuration = (a, b) => (a && b ? ((b - a) * 1000).toFixed(0) + " ms" : "–");
const statusCell = (status) => el("td", { class: "status status-" + status, "data-field": "status" }, status);

function notConfigured() {
  main.replaceChildren(el("h1", {}, "Workflows"),
    el("p", { id: "no-workflows", class: "muted" },
       "No workflows configured on this server (it was started without a workflow engine)."));
}

// ------------------------------------------------------------------ machines

async function showWorkflows() {
  const doc = await api("workflows");
  if (!doc.configured) return notConfigured();
  const rows = doc.machines.map((m) => el("tr", { "data-machine": m.name },
    el("td", {}, el("a", { href: "#/wf/" + encodeURIComponent(m.name) }, m.name)),
    el("td", {}, m.type),
    el("td", { class: "num", "data-field": "executions" }, String(m.executions)),
    ...STATUSES.map((s) => el("td", { class: "num" + (m.counts[s] ? " status-" + s : ""), "data-field": s },
                              String(m.counts[s] || 0))),
    el("td", {}, fmtTime(m.last_start))));
  main.replaceChildren(el("h1", {}, `Workflows (${doc.machines.length})`),
    doc.machines.length ? el("table", { id: "machines" },
      el("thead", {}, el("tr", {}, ...["state machine", "type", "executions", ...STATUSES, "last started"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows))
      : el("p", { class: "muted", id: "no-machines" }, "No state machines yet: `runner workflow create` or the Step Functions API makes one."));
}

// ------------------------------------------------------------------ one machine

async function showMachine(name) {
  const doc = await api("workflows/" + encodeURIComponent(name));
  const rows = doc.executions.map((x) => el("tr", { "data-execution": x.name },
    el("td", {}, el("a", { href: `#/wf/${encodeURIComponent(name)}/ex/${encodeURIComponent(x.name)}` }, x.name)),
    statusCell(x.status), el("td", {}, fmtTime(x.start)), el("td", {}, fmtTime(x.stop)),
    el("td", { class: "num" }, fmtDuration(x.start, x.stop))));
  main.replaceChildren(
    el("h1", { "data-machine-page": name }, name),
    el("p", { class: "muted" }, `${doc.type} state machine, created ${fmtTime(doc.created)}; ` +
       `${doc.total_executions} executions` + (doc.total_executions > rows.length ? ` (newest ${rows.length} shown)` : "")),
    el("div", { class: "cols" },
      el("div", {}, el("h2", {}, "Executions"),
         rows.length ? el("table", { id: "executions" },
           el("thead", {}, el("tr", {}, ...["name", "status", "started", "stopped", "duration"].map((h) => el("th", {}, h)))),
           el("tbody", {}, ...rows)) : el("p", { class: "muted" }, "No executions yet.")),
      el("div", {}, el("h2", {}, "States"), stateGraph(doc.graph, false))),
    el("h2", {}, "Definition"), el("pre", { id: "definition" }, doc.definition));
}

// ------------------------------------------------------------------ one execution

async function showExecution(machine, name) {
  const doc = await api(`workflows/${encodeURIComponent(machine)}/executions/${encodeURIComponent(name)}`);
  const info = [["status", doc.status], ["started", fmtTime(doc.start)], ["stopped", fmtTime(doc.stop)],
                ["duration", fmtDuration(doc.start, doc.stop)], ["error", doc.error], ["cause", doc.cause]]
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => el("tr", {}, el("th", {}, k),
                        k === "status" ? statusCell(v) : el("td", { "data-field": k }, String(v))));
  const events = doc.events.map((e) => el("tr", { "data-event": String(e.id) },
    el("td", { class: "num" }, String(e.id)), el("td", {}, fmtTime(e.timestamp)),
    el("td", {}, e.type), el("td", {}, e.state)));
  main.replaceChildren(
    el("h1", { "data-execution-page": name }, el("a", { href: "#/wf/" + encodeURIComponent(machine) }, machine), " / ", name),
    el("div", { class: "cols" },
      el("div", {}, el("h2", {}, "States"), stateGraph(doc.graph, true), legend()),
      el("div", {}, el("h2", {}, "Execution"), el("table", { id: "execution" }, el("tbody", {}, ...info)),
         el("h2", {}, "Input"), el("pre", { id: "exec-input" }, doc.input),
         el("h2", {}, "Output"), el("pre", { id: "exec-output" }, doc.output ?? "–"))),
    el("h2", {}, "History"),
    el("table", { id: "history" }, el("thead", {}, el("tr", {}, ...["id", "time", "type", "state"].map((h) => el("th", {}, h)))),
       el("tbody", {}, ...events)));
  if (doc.status === "RUNNING") {  // follow a run in progress until it ends
    const hash = location.hash;
    const t = setTimeout(() => { if (location.hash === hash) route(); }, 1000);
    cleanup.push(() => clearTimeout(t));
  }
}

function legend() {
  return el("p", { class: "legend" }, ...OUTCOMES.map((o) =>
    el("span", { class: "legend-item" }, el("span", { class: "swatch st-" + o }), o.replace("_", " "))));
}

// ------------------------------------------------------------------ the graph

// States stand in one column in the order of the definition. An edge to the state just below
// is a straight arrow; any other (a jump, a loop back, a Catch, a Choice rule) runs in a lane
// of its own on the right, so no two edges share a line.
function stateGraph(g, withOutcomes) {
  const W = 240, H = 44, GAP = 34, TOP = 44, LEFT = 20, LANE = 16;
  const index = new Map(g.nodes.map((n, i) => [n.name, i]));
  const y = (i) => TOP + i * (H + GAP);
  const right = LEFT + W;
  const laneEdges = [];
  const straight = new Set();
  const items = [];
  const labels = [];  // drawn after every edge, so that no later lane crosses a label
  const edges = [{ from: null, to: g.start, kind: "start", label: "" }, ...g.edges];
  for (const e of edges) {
    const i = e.from === null ? -1 : index.get(e.from), j = index.get(e.to);
    if (j === undefined) continue;
    if (j === i + 1 && !straight.has(i) && e.kind !== "catch") {
      straight.add(i);
      const x = LEFT + W / 2, y0 = i < 0 ? 22 : y(i) + H, y1 = y(j);
      items.push(svg("line", { x1: x, y1: y0, x2: x, y2: y1 - 2, class: "edge edge-" + e.kind,
                               "marker-end": "url(#arrow)", "data-edge": `${e.from ?? "start"}->${e.to}` }));
      if (e.label) labels.push(svg("text", { x: x + 6, y: (y0 + y1) / 2 + 4, class: "edge-label" }, e.label));
    } else {
      laneEdges.push([e, i, j]);
    }
  }
  laneEdges.forEach(([e, i, j], k) => {
    const lx = right + LANE * (k + 1);
    const y0 = i < 0 ? 16 : y(i) + H / 2 - 6 + (k % 3) * 6, y1 = y(j) + H / 2 + 6 - (k % 3) * 6;
    const x0 = i < 0 ? LEFT + W / 2 + 10 : right;
    items.push(svg("path", { d: `M${x0},${y0} H${lx} V${y1} H${right + 2}`, fill: "none",
                             class: "edge edge-" + e.kind, "marker-end": "url(#arrow)",
                             "data-edge": `${e.from ?? "start"}->${e.to}` }));
    // Beside its lane, halfway: edges leaving one state (Choice rules) get labels apart.
    if (e.label) labels.push(svg("text", { x: lx + 3, y: (y0 + y1) / 2 + 4, class: "edge-label" }, e.label));
  });
  const boxes = g.nodes.map((n, i) => {
    const outcome = withOutcomes ? n.outcome : "none";
    const title = `${n.name} (${n.type})` + (withOutcomes ? `: ${outcome.replace("_", " ")}` : "") +
      (n.entered > 1 ? `, entered ${n.entered} times` : "") + (n.error ? `\n${n.error}: ${n.cause ?? ""}` : "") +
      (n.inner.length ? `\ncontains: ${n.inner.join(", ")}` : "");
    return svg("g", { class: "state", "data-state": n.name, "data-outcome": outcome },
      svg("title", {}, title),
      svg("rect", { x: LEFT, y: y(i), width: W, height: H, rx: 6, class: "st-" + outcome }),
      svg("text", { x: LEFT + 10, y: y(i) + 19, class: "state-name" }, n.name),
      svg("text", { x: LEFT + 10, y: y(i) + 35, class: "state-type" },
          n.type + (n.end ? " · end" : "") + (n.inner.length ? ` · ${n.inner.length} inner states` : "") +
          (withOutcomes && n.entered > 1 ? ` · ×${n.entered}` : "")));
  });
  const width = right + LANE * (laneEdges.length + 1) + 90;
  const height = y(g.nodes.length) + 4;
  const defs = svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" })));
  const start = svg("g", { class: "start" }, svg("circle", { cx: LEFT + W / 2, cy: 14, r: 8 }),
                    svg("text", { x: LEFT + W / 2 + 14, y: 18, class: "edge-label" }, "start"));
  return svg("svg", { id: "graph", width, height, viewBox: `0 0 ${width} ${height}` }, defs, ...items, ...labels, start, ...boxes);
}
