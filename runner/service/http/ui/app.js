// The dashboard: one page, views #/ (functions), #/fn/NAME, #/usage and the workflow views of
// workflows.js (#/workflows, #/wf/MACHINE, #/wf/MACHINE/ex/NAME), drawn from the JSON API
// under /ui/api/ (runner/service/http/dashboard.py). Charts are uPlot, served by the
// runner itself. Elements the browser tests read carry data-* attributes.
"use strict";

const main = document.getElementById("main");
let cleanup = [];  // what the current view must undo when another one is shown

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

async function api(path, options) {
  const r = await fetch("/ui/api/" + path, options);
  const doc = await r.json();
  if (!r.ok) throw new Error(doc.message || r.statusText);
  return doc;
}

const fmtMs = (v) => (v === null || v === undefined ? "–" : v < 10 ? v.toFixed(2) : v.toFixed(0));
const fmtPct = (v) => (v * 100).toFixed(1) + "%";
const fmtTime = (s) => (s ? new Date(s * 1000).toISOString().replace("T", " ").slice(0, 19) : "–");

function sparkline(values, width, height) {
  const box = el("span", { class: "spark" });
  const xs = values.map((_, i) => i);
  const opts = {
    width, height, pxAlign: 0, cursor: { show: false }, legend: { show: false },
    select: { show: false }, scales: { x: { time: false } },
    axes: [{ show: false }, { show: false }],
    series: [{}, { stroke: "#e07b00", fill: "rgba(224,123,0,.15)", width: 1, points: { show: false } }],
  };
  box.plot = () => new uPlot(opts, [xs, values], box);
  return box;
}

function chart(title, data, series, width, xRange) {
  const box = el("div", { class: "chart", "data-chart": title }, el("h3", {}, title));
  const opts = {
    width, height: 180, scales: xRange ? { x: { time: true, range: () => xRange } } : {}, legend: { show: true }, cursor: { drag: { x: false, y: false } },
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, scale: s.scale || "y",
                                         spanGaps: !!s.sparse, points: { show: !!s.sparse, size: 4 } }))],
    axes: [{}, { scale: "y" }, ...(series.some((s) => s.scale === "gb") ? [{ scale: "gb", side: 1, grid: { show: false } }] : [])],
  };
  box.plot = () => new uPlot(opts, data, box);
  return box;
}

// ------------------------------------------------------------------ functions list

async function showFunctions() {
  const t0 = performance.now();
  const doc = await api("functions?window=3600");
  const rows = doc.functions.map((f) => {
    const spark = sparkline(f.sparkline, 120, 26);
    const tr = el("tr", { "data-function": f.name, class: f.errors ? "err" : "" },
      el("td", {}, el("a", { href: "#/fn/" + encodeURIComponent(f.name) }, f.name)),
      el("td", { "data-field": "runtime" }, f.runtime),
      el("td", { class: "num", "data-field": "memory_mb" }, String(f.memory_mb)),
      el("td", { class: "num", "data-field": "timeout_s" }, String(f.timeout_s)),
      el("td", { "data-field": "last_modified" }, fmtTime(f.last_modified)),
      el("td", { class: "num", "data-field": "invocations" }, String(f.invocations)),
      el("td", { class: "num", "data-field": "errors" }, String(f.errors)),
      el("td", { class: "num", "data-field": "throttles" }, String(f.throttles)),
      el("td", { class: "num", "data-field": "p50_ms" }, fmtMs(f.p50_ms)),
      el("td", { class: "num", "data-field": "p99_ms" }, fmtMs(f.p99_ms)),
      el("td", { class: "num", "data-field": "cold_start_share" }, fmtPct(f.cold_start_share)),
      el("td", {}, spark));
    tr.spark = spark;
    return tr;
  });
  const head = ["name", "runtime", "memory MB", "timeout s", "last modified", "invocations",
                "errors", "throttles", "p50 ms", "p99 ms", "cold starts", "last hour"];
  main.replaceChildren(
    el("h1", {}, `Functions (${doc.functions.length})`),
    el("p", { class: "muted" }, "Totals over the last hour; the sparkline is invocations per minute."),
    el("table", { id: "functions" }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
       el("tbody", {}, ...rows)));
  for (const tr of rows) tr.spark.plot();
  document.body.dataset.renderMs = (performance.now() - t0).toFixed(1);
}

// ------------------------------------------------------------------ one function

function seriesData(points) {
  const xs = points.map((p) => p.minute);
  const col = (k) => points.map((p) => p[k]);
  return { xs, col };
}

async function showFunction(name, windowS) {
  const doc = await api(`functions/${encodeURIComponent(name)}?window=${windowS}`);
  const { xs, col } = seriesData(doc.series);
  const width = Math.max(420, Math.min(640, (main.clientWidth || 900) / 2 - 40));
  const charts = [
    chart("Invocations", [xs, col("invocations"), col("errors"), col("throttles")],
          [{ label: "invocations", color: "#2e86de" }, { label: "errors", color: "#c0392b" },
           { label: "throttles", color: "#8e44ad" }], width),
    chart("Duration (ms)", [xs, col("p50_ms"), col("p99_ms")],
          [{ label: "p50", color: "#27ae60", sparse: true }, { label: "p99", color: "#e67e22", sparse: true }], width),
    chart("Concurrency", [xs, col("concurrency")], [{ label: "max in flight", color: "#16a085" }], width),
    chart("Cold starts", [xs, col("cold_starts")], [{ label: "cold starts", color: "#7f8c8d" }], width),
  ];
  const total = doc.series.reduce((a, p) => a + p.invocations, 0);
  const errors = doc.series.reduce((a, p) => a + p.errors, 0);
  const cfgRows = Object.entries(doc.config).map(([k, v]) =>
    el("tr", {}, el("th", {}, k), el("td", { "data-config": k },
                                      typeof v === "object" ? JSON.stringify(v) : String(v))));
  const versions = doc.versions.map((v) => el("tr", {}, el("td", {}, v.version),
    el("td", {}, String(v.revision)), el("td", {}, fmtTime(v.created_at)),
    el("td", { class: "muted" }, v.code_sha256.slice(0, 12))));
  const routes = doc.routes.map((r) => el("li", {}, `${r.method} ${r.path}` + (r.qualifier ? ` (${r.qualifier})` : "")));
  const windowLinks = [[3600, "1 h"], [86400, "24 h"]].map(([s, label]) =>
    el("a", { href: `#/fn/${encodeURIComponent(name)}/${s}`, class: s === windowS ? "on" : "" }, label));

  const payload = el("textarea", { id: "payload", value: "{}" });
  const result = el("pre", { id: "invoke-result" });
  const resultLog = el("pre", { id: "invoke-log" });
  const invoke = async () => {
    result.textContent = "…";
    try {
      const r = await api(`functions/${encodeURIComponent(name)}/invoke`, { method: "POST", body: payload.value });
      result.textContent = (r.function_error ? "Function error: " : "") + r.payload;
      result.className = r.function_error ? "fnerror" : "";
      resultLog.textContent = r.log;
    } catch (e) {
      result.textContent = "Error: " + e.message;
      result.className = "fnerror";
    }
  };
  const tail = el("pre", { id: "log-tail" });
  main.replaceChildren(
    el("h1", { "data-function-page": name }, name),
    el("p", { class: "window" }, "Window: ", ...windowLinks,
       el("span", { class: "muted" }, ` ${total} invocations, ${errors} errors in this window`)),
    el("div", { class: "charts" }, ...charts),
    el("div", { class: "cols" },
      el("div", {}, el("h2", {}, "Configuration"), el("table", { id: "config" }, el("tbody", {}, ...cfgRows)),
         el("h2", {}, "Versions"), el("table", { id: "versions" }, el("tbody", {}, ...versions)),
         el("h2", {}, "HTTP routes"), routes.length ? el("ul", { id: "routes" }, ...routes) : el("p", { class: "muted" }, "No HTTP routes."),
         el("h2", {}, "Event sources, triggers and schedules"), eventSources(doc.event_sources),
         el("p", { "data-field": "dead_letters" }, `Dead letters: ${doc.dead_letters}`)),
      el("div", {}, el("h2", {}, "Invoke"), payload, el("br"),
         el("button", { id: "invoke", onclick: invoke }, "Invoke"),
         result, resultLog)),
    el("h2", {}, "Log (live)"), tail);
  for (const c of charts) c.plot();
  // The live tail: server-sent events; closed when another view is shown.
  const lines = (await api(`functions/${encodeURIComponent(name)}/logs?lines=50`)).lines;
  tail.textContent = lines.join("\n") + (lines.length ? "\n" : "");
  const source = new EventSource(`/ui/api/functions/${encodeURIComponent(name)}/logs/stream`);
  source.onmessage = (ev) => {
    tail.textContent += JSON.parse(ev.data) + "\n";
    tail.scrollTop = tail.scrollHeight;
  };
  cleanup.push(() => source.close());
}

// What else invokes the function: one list per kind, each item with a data-source attribute
// ("mapping/UUID", "trigger/NAME", "subscription/ID", "schedule/NAME").
function eventSources(src) {
  const kinds = [
    ["mappings", "Event source mappings", "mapping", (m) => m.uuid,
     (m) => `${m.source_type} ${m.endpoint} ${m.name}` + (m.qualifier ? ` (${m.qualifier})` : "") +
            ` · batch ${m.batch_size} · ${m.state} · ${m.last_result}`],
    ["triggers", "Object-store triggers", "trigger", (t) => t.name,
     (t) => `${t.name}: bucket ${t.bucket} ${t.events.join(",")}` + (t.prefix ? ` prefix ${t.prefix}` : "") +
            (t.suffix ? ` suffix ${t.suffix}` : "")],
    ["subscriptions", "Topic subscriptions", "subscription", (s) => s.id,
     (s) => `topic ${s.topic}` + (s.qualifier ? ` (${s.qualifier})` : "") +
            (s.filter_policy ? ` filter ${JSON.stringify(s.filter_policy)}` : "")],
    ["schedules", "Schedules", "schedule", (s) => s.name,
     (s) => `${s.name}: ${s.expression} ${s.timezone}` + (s.enabled ? "" : " (disabled)") +
            (s.next_slot ? ` · next ${fmtTime(s.next_slot)}` : "")],
  ];
  return el("div", { id: "event-sources" }, ...kinds.map(([key, title, kind, id, text]) => {
    const part = src[key];
    const body = !part.configured ? el("p", { class: "muted", "data-none": key }, "Not configured on this server.")
      : part.items.length ? el("ul", { "data-sources": key }, ...part.items.map((item) =>
          el("li", { "data-source": `${kind}/${id(item)}` }, text(item))))
      : el("p", { class: "muted", "data-none": key }, "None.");
    return el("div", {}, el("h3", {}, title), body);
  }));
}

// ------------------------------------------------------------------ usage

async function showUsage() {
  const doc = await api("usage?since=" + 7 * 86400);
  const rows = doc.days.map((d) => el("tr", { "data-usage": `${d.day}/${d.function}` },
    el("td", {}, d.day), el("td", {}, d.function),
    el("td", { class: "num", "data-field": "requests" }, String(d.requests)),
    el("td", { class: "num", "data-field": "gb_seconds" }, d.gb_seconds.toFixed(4)),
    el("td", { class: "num" }, d.provisioned_gb_seconds.toFixed(4))));
  // All functions per day, as a chart above the table.
  const perDay = new Map();
  for (const d of doc.days) {
    const t = perDay.get(d.day) || { requests: 0, gb: 0 };
    t.requests += d.requests;
    t.gb += d.gb_seconds + d.provisioned_gb_seconds;
    perDay.set(d.day, t);
  }
  const days = [...perDay.keys()].sort();
  const xs = days.map((d) => Date.parse(d + "T00:00:00Z") / 1000);
  const usageChart = chart("Per day, all functions", [xs, days.map((d) => perDay.get(d).requests), days.map((d) => perDay.get(d).gb)],
    [{ label: "requests", color: "#2e86de", sparse: true }, { label: "GB-seconds", color: "#e67e22", sparse: true, scale: "gb" }], 640,
    [Math.floor(Date.now() / 86400000 - 6) * 86400 - 43200, Math.floor(Date.now() / 86400000) * 86400 + 43200]);
  main.replaceChildren(el("h1", {}, "Usage (last 7 days)"),
    el("p", { class: "muted" }, "Requests and GB-seconds (billed duration × memory) per function per UTC day; provisioned concurrency apart."),
    usageChart,
    el("table", { id: "usage" }, el("thead", {}, el("tr", {}, ...["day", "function", "requests", "GB-s", "provisioned GB-s"].map((h) => el("th", {}, h)))),
       el("tbody", {}, ...rows)));
  usageChart.plot();
}

// ------------------------------------------------------------------ routing

async function route() {
  for (const f of cleanup.splice(0)) f();
  const hash = location.hash.replace(/^#/, "") || "/";
  const status = document.getElementById("status");
  status.textContent = "";
  document.body.dataset.ready = "";
  try {
    const m = hash.match(/^\/fn\/([^/]+)(?:\/(\d+))?$/);
    const wf = hash.match(/^\/wf\/([^/]+)(?:\/ex\/([^/]+))?$/);
    if (m) await showFunction(decodeURIComponent(m[1]), Number(m[2] || 3600));
    else if (wf && wf[2]) await showExecution(decodeURIComponent(wf[1]), decodeURIComponent(wf[2]));
    else if (wf) await showMachine(decodeURIComponent(wf[1]));
    else if (hash === "/workflows") await showWorkflows();
    else if (hash === "/usage") await showUsage();
    else await showFunctions();
  } catch (e) {
    main.replaceChildren(el("p", { class: "fnerror", id: "error" }, e.message));
  }
  document.body.dataset.ready = hash;
}

window.addEventListener("hashchange", route);
route();
