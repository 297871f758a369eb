// Fieldwatch dashboard: stations, their devices' health and latest values,
// and a chart of one series. Plain DOM, no dependencies, works offline.
"use strict";

const $ = (sel) => document.querySelector(sel);
let chartSel = null; // {station, device, metric, unit}
// A gateway always holds the few readings of its last unacknowledged batch;
// only a real backlog (a link outage) is worth showing.
const backlogShown = 100;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function fmt(v) {
  if (v === null || v === undefined) return "—";
  const a = Math.abs(v);
  return Number(v.toFixed(a >= 1000 ? 0 : a >= 10 ? 1 : 2)).toString();
}

function label(metric) {
  return metric.replace(/_/g, " ");
}

// The API token, when the cloud asks for one (http.tokens_file), is kept
// in this browser. A read asks for it once per page load; an action asks
// whenever it is refused for want of one.
const tokenKey = "fieldwatch-token";
let askedForToken = false;

function apiToken() {
  return localStorage.getItem(tokenKey);
}

async function api(method, url, body, action) {
  for (let tries = 0; ; tries++) {
    const headers = { "Content-Type": "application/json" };
    if (apiToken()) headers.Authorization = `Bearer ${apiToken()}`;
    const r = await fetch(url, { method, cache: "no-store", headers, body: body && JSON.stringify(body) });
    const out = await r.json().catch(() => ({}));
    if (r.status === 401 && tries === 0 && (action || !askedForToken)) {
      askedForToken = true;
      const t = prompt(`${out.error || "This needs an API token."}\nYour API token (\`fieldwatch-cloud token\` makes one):`);
      if (t && t.trim()) {
        localStorage.setItem(tokenKey, t.trim());
        // The cloud records the token's name as the author now.
        if (body) for (const k of ["by", "created_by"]) delete body[k];
        continue;
      }
    }
    if (!r.ok) throw new Error(out.error || `${r.status} ${r.statusText}`);
    return out;
  }
}

function getJSON(url) {
  return api("GET", url);
}

function renderStations(stations) {
  const root = $("#stations");
  root.replaceChildren();
  let online = 0, devices = 0, healthy = 0, attention = 0;
  if (stations.length === 0) {
    root.append(el("div", { class: "empty" }, "No stations yet. Start a gateway, or run `make demo`."));
  }
  for (const st of stations) {
    if (st.state === "online") online++;
    const card = el("article", { class: `station ${st.state}` });
    const where = [st.site && `site ${st.site}`, st.location && `${st.location.lat.toFixed(4)}, ${st.location.lon.toFixed(4)}`]
      .filter(Boolean).join(" · ");
    card.append(
      el("h2", {}, st.id, el("span", { class: `badge ${st.state}` }, st.state)),
      el("div", { class: "meta muted" },
        [where, `last heard ${ago(st.last_seen)}`,
          st.buffered >= backlogShown ? `backlog of ${st.buffered} readings at the gateway` : "",
          st.version && `version ${st.version}`].filter(Boolean).join(" · ")),
    );
    const table = el("table", {}, el("tr", {}, el("th", {}, "device"), el("th", {}, "state"), el("th", {}, "latest")));
    for (const d of st.devices) {
      devices++;
      if (d.state === "ok") healthy++;
      else if (d.state === "late" || d.state === "failing") attention++;
      const metrics = el("div", { class: "metrics" });
      for (const s of d.latest) {
        const stale = d.state !== "ok";
        const btn = el("button", {
          class: `metric ${s.quality !== "good" ? s.quality : ""} ${stale ? "stale" : ""}`,
          title: `${label(s.metric)} at ${new Date(s.time).toLocaleString()} (${s.quality})`,
          onclick: () => openChart({ station: st.id, device: d.id, metric: s.metric, unit: s.unit }),
        }, el("span", { class: "name" }, label(s.metric)), el("span", { class: "value" }, `${fmt(s.value)} ${s.unit || ""}`));
        metrics.append(btn);
      }
      const info = el("div", {}, el("div", { class: "device-id" }, d.id), el("div", { class: "muted" }, d.profile || ""));
      if (d.location) info.append(el("div", { class: "muted" }, `at ${d.location.lat.toFixed(5)}, ${d.location.lon.toFixed(5)}`));
      if (d.events) info.append(el("div", { class: "muted" }, d.events === 1 ? "1 event" : `${d.events} events`));
      const state = el("div", {}, el("span", { class: `badge ${d.state}` }, d.state), el("div", { class: "muted" }, ago(d.last_seen)));
      if (d.error) state.append(el("div", { class: "err" }, d.error));
      table.append(el("tr", {}, el("td", {}, info), el("td", {}, state), el("td", {}, metrics)));
    }
    card.append(table);
    if (st.events && st.events.length) card.append(renderEvents(st.events.slice(0, 8)));
    card.append(historyBox(st.id));
    root.append(card);
  }
  $("#summary").textContent = `${online}/${stations.length} stations online · ${healthy}/${devices} devices reporting` +
    (attention ? ` · ${attention} need attention` : "");
}

// renderEvents lists a station's newest events: tags read, buoys adrift.
function renderEvents(events) {
  const list = el("table", { class: "events" }, el("tr", {}, el("th", {}, "event"), el("th", {}, "device"), el("th", {}, "when"), el("th", {}, "details")));
  for (const e of events) {
    const a = e.attrs || {}, v = e.values || {};
    let what = e.kind, details = "";
    if (e.kind === "tag") {
      what = `tag ${e.key}`;
      details = [a.tag_type, a.state, v.count !== undefined && `${v.count} reads`, v.duration_s !== undefined && `${fmt(v.duration_s)} s`]
        .filter(Boolean).join(" · ");
    } else if (e.kind === "drift") {
      what = a.state === "returned" ? "back on mooring" : "ADRIFT";
      details = [v.distance_m !== undefined && `${fmt(v.distance_m)} m from mooring`, v.radius_m !== undefined && `radius ${fmt(v.radius_m)} m`,
        v.lat !== undefined && `${v.lat.toFixed(5)}, ${v.lon.toFixed(5)}`].filter(Boolean).join(" · ");
    } else {
      details = Object.entries(a).concat(Object.entries(v)).map(([k, x]) => `${k} ${x}`).join(" · ");
    }
    list.append(el("tr", { class: e.kind === "drift" && a.state !== "returned" ? "alarm" : "" },
      el("td", {}, what), el("td", {}, e.device), el("td", { title: e.time }, ago(e.time)), el("td", { class: "muted" }, details)));
  }
  return el("div", { class: "events-box" }, el("div", { class: "muted" }, "recent events"), list);
}

// Stations whose alert history is open survive the refresh.
const historyOpen = new Set();

function historyBox(station) {
  const box = el("div", {});
  const d = el("details", {}, el("summary", { class: "muted" }, "alert history"), box);
  const load = () => showHistory(station, box).catch((e) => box.replaceChildren(e.message));
  d.addEventListener("toggle", () => {
    if (d.open) { historyOpen.add(station); load(); } else historyOpen.delete(station);
  });
  if (historyOpen.has(station)) { d.open = true; load(); }
  return d;
}

async function refresh() {
  try {
    renderStations(await getJSON("/api/v1/stations"));
    $("#error").hidden = true;
    $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    if (chartSel) await drawChart();
  } catch (e) {
    $("#error").hidden = false;
    $("#error").textContent = `Cannot reach the Fieldwatch cloud: ${e.message}`;
  }
}

function openChart(sel) {
  chartSel = sel;
  history.replaceState(null, "", `#chart=${sel.station}/${sel.device}/${sel.metric}`);
  $("#chart").hidden = false;
  $("#chart-title").textContent = `${sel.station} / ${sel.device} / ${label(sel.metric)}${sel.unit ? ` (${sel.unit})` : ""}`;
  drawChart();
  $("#chart").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

const rangeSeconds = { "1h": 3600, "6h": 21600, "24h": 86400, "168h": 604800 };

async function drawChart() {
  const sel = chartSel;
  const range = $("#chart-range").value;
  const secs = rangeSeconds[range];
  const every = Math.max(1, Math.round(secs / 300));
  const q = new URLSearchParams({ station: sel.station, device: sel.device, metric: sel.metric, from: `-${range}`, every: `${every}s` });
  const svg = $("#chart-svg");
  let data;
  try {
    data = await getJSON(`/api/v1/series?${q}`);
  } catch (e) {
    $("#chart-stats").textContent = `cannot load the series: ${e.message}`;
    return;
  }
  if (!sel.unit && data.samples.length) {
    sel.unit = data.samples[0].unit || "";
    $("#chart-title").textContent = `${sel.station} / ${sel.device} / ${label(sel.metric)}${sel.unit ? ` (${sel.unit})` : ""}`;
  }
  const pts = data.samples.filter((s) => s.value !== null).map((s) => ({ t: Date.parse(s.time), v: s.value, bad: s.quality === "bad" }));
  svg.replaceChildren();
  if (pts.length === 0) {
    $("#chart-stats").textContent = "no values in this range";
    return;
  }
  const t1 = Date.parse(data.to), t0 = Date.parse(data.from);
  let lo = Math.min(...pts.map((p) => p.v)), hi = Math.max(...pts.map((p) => p.v));
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.08; lo -= pad; hi += pad;
  const W = 900, H = 260, L = 48, B = 22;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - 6);
  const y = (v) => 6 + (1 - (v - lo) / (hi - lo)) * (H - B - 6);
  const ns = "http://www.w3.org/2000/svg";
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
  };
  // Enough decimals that neighbouring ticks differ.
  const decimals = Math.min(4, Math.max(0, Math.ceil(-Math.log10((hi - lo) / 4))));
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    add("line", { class: "grid", x1: L, x2: W, y1: y(v), y2: y(v) });
    add("text", { class: "axis", x: 2, y: y(v) + 4 }, v.toFixed(decimals));
  }
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    add("text", { class: "axis", x: Math.min(x(t), W - 60), y: H - 4 }, new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  }
  // Break the line where the series has a gap of more than three steps.
  let d = "", prev = null;
  for (const p of pts) {
    d += `${prev === null || p.t - prev > 3 * every * 1000 ? "M" : "L"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)} `;
    prev = p.t;
  }
  add("path", { class: "line", d });
  for (const p of pts.filter((p) => p.bad)) add("circle", { class: "badpt", cx: x(p.t), cy: y(p.v), r: 3 });
  const vals = pts.map((p) => p.v);
  const last = pts[pts.length - 1];
  $("#chart-stats").textContent = `last ${fmt(last.v)} · min ${fmt(Math.min(...vals))} · max ${fmt(Math.max(...vals))} · ` +
    `${data.samples.length} points of ${every} s means`;
}

$("#chart-close").addEventListener("click", () => {
  chartSel = null;
  $("#chart").hidden = true;
  history.replaceState(null, "", location.pathname);
});
// A link such as /#chart=farm-north/soil-east/soil_moisture opens that chart.
const linked = /^#chart=([\w.-]+)\/([\w.-]+)\/([\w.-]+)$/.exec(location.hash);
if (linked) openChart({ station: linked[1], device: linked[2], metric: linked[3], unit: "" });
$("#chart-range").addEventListener("change", () => chartSel && drawChart());
refresh();
setInterval(refresh, 5000);
