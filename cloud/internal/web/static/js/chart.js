// Charts: several metrics of one device at once, drawn by uPlot, with the
// values under the cursor in the legend and a time-range picker. Each
// range asks /api/v1/series for bucket means with an `every` that keeps it
// at or under about 1000 points per series. Behind each mean line, the
// band from each bucket's minimum to its maximum; across the plot, the
// thresholds of the rules that judge the series (GET /api/v1/thresholds)
// in their colours; along the bottom, the device's events in the range.
import { uPlot } from "./vendor.js";
import { t, metricName, unitName, lang } from "./i18n.js";
import { getJSON } from "./api.js";
import { $, el, fmt, tzName, nameOf } from "./util.js";

export const ranges = [["1h", 3600], ["6h", 21600], ["24h", 86400], ["7d", 604800], ["30d", 2592000], ["1y", 31536000]];
const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
const maxPoints = 1000;
const sevColors = { red: "#c0262d", orange: "#e0661b", yellow: "#d4a106", blue: "#1f5fbf" };
const opSym = { ">=": "≥", "<=": "≤" };
const palette = ["#1f6f8b", "#c0392b", "#2f8f4e", "#8e44ad", "#d35400", "#2c3e50", "#b7950b", "#16a085"];

// stepFor is the smallest bucket width that keeps secs at maxPoints or fewer.
export function stepFor(secs) {
  for (const s of steps) if (secs / s <= maxPoints) return s;
  return steps[steps.length - 1];
}

function goDuration(s) {
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

let sel = null;        // {station, device, metrics: [names]}
let range = "1h";
let stations = [];
let plot = null, plotKey = "";
let lastLoad = 0, loading = false;
let xr = [0, 1];
let pointCounts = [];  // values per series in the last answer       // the x scale: the requested range, in Unix seconds
let onHash = () => {};
// What the hooks draw besides the series: bands [{si, scale, color, lo, hi,
// every}], threshold lines [{scale, color, value, text}], events and the
// extent of bands and lines per scale (so the y range takes them in).
let overlay = { bands: [], lines: [], events: [], extents: {} };

export function initChart(opts) {
  onHash = opts.onHash || onHash;
  $("#chart-close").addEventListener("click", close);
  $("#chart-device").addEventListener("change", (e) => {
    if (!sel) return;
    const d = device(sel.station, e.target.value);
    sel = { station: sel.station, device: e.target.value, metrics: d && d.latest.length ? [d.latest[0].metric] : [] };
    changed();
  });
  drawRangeButtons();
  new ResizeObserver(() => requestAnimationFrame(() => plot && plot.setSize(size()))).observe($("#chart-plot"));
}

function drawRangeButtons() {
  $("#chart-range").replaceChildren(...ranges.map(([k]) => el("button", {
    type: "button", "aria-pressed": String(k === range), onclick: () => { range = k; drawRangeButtons(); load(true); },
  }, t(`range.${k}`))));
}

function device(station, id) {
  const st = stations.find((s) => s.id === station);
  return st && st.devices.find((d) => d.id === id);
}

function unitOf(metric) {
  const d = sel && device(sel.station, sel.device);
  const s = d && d.latest.find((x) => x.metric === metric);
  return (s && s.unit) || "";
}

// setStations keeps the newest station list (devices and their metrics)
// and refreshes the chart when its range is short enough to move.
export function setStations(list) {
  stations = list;
  if (!sel) return;
  drawPickers();
  const every = stepFor(ranges.find((r) => r[0] === range)[1]) * 1000;
  if (Date.now() - lastLoad >= Math.max(5000, every)) load(false);
}

// open shows device's chart with metric added, or only metric when the
// chart showed another device.
export function open(station, dev, metric) {
  if (sel && sel.station === station && sel.device === dev) {
    if (!sel.metrics.includes(metric)) sel.metrics.push(metric);
  } else sel = { station, device: dev, metrics: [metric] };
  changed();
  $("#chart").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

// openLinked opens the chart of a link (#chart=station/device/m1,m2).
export function openLinked(station, dev, metrics) {
  sel = { station, device: dev, metrics };
  changed();
}

export function close() {
  sel = null;
  $("#chart").hidden = true;
  if (plot) { plot.destroy(); plot = null; plotKey = ""; }
  onHash("");
}

export function selectedStation() {
  return sel && sel.station;
}

function changed() {
  $("#chart").hidden = false;
  onHash(`chart=${sel.station}/${sel.device}/${sel.metrics.join(",")}`);
  drawPickers();
  load(true);
}

function drawPickers() {
  const st = stations.find((s) => s.id === sel.station);
  $("#chart-title").textContent = `${st ? nameOf(st) : sel.station} / ${sel.device}`;
  const devs = st ? st.devices.filter((d) => d.latest.length) : [];
  const dsel = $("#chart-device");
  const want = devs.map((d) => d.id).join("\n");
  if (dsel.dataset.ids !== want || dsel.value !== sel.device) {
    dsel.replaceChildren(...devs.map((d) => el("option", { value: d.id }, d.id)));
    if (!devs.some((d) => d.id === sel.device)) dsel.append(el("option", { value: sel.device }, sel.device));
    dsel.value = sel.device;
    dsel.dataset.ids = want;
  }
  const d = device(sel.station, sel.device);
  const names = d ? d.latest.map((s) => s.metric) : [];
  for (const m of sel.metrics) if (!names.includes(m)) names.push(m);
  const box = $("#chart-metrics");
  box.replaceChildren(...names.map((m) => {
    const on = sel.metrics.includes(m);
    const i = sel.metrics.indexOf(m);
    return el("label", { class: `pick${on ? " on" : ""}` },
      el("input", {
        type: "checkbox", checked: on ? "" : null, onchange: (e) => {
          if (e.target.checked) sel.metrics.push(m); else sel.metrics = sel.metrics.filter((x) => x !== m);
          changed();
        },
      }),
      on ? el("span", { class: `swatch c${i % palette.length}` }) : "",
      metricName(m));
  }));
}

function size() {
  const w = Math.max(200, $("#chart-plot").clientWidth);
  return { width: w, height: w < 600 ? 240 : 320 };
}

// load asks for every picked metric over the range and draws them.
async function load(force) {
  if (!sel || (loading && !force)) return;
  const want = JSON.stringify([sel, range]);
  loading = true;
  lastLoad = Date.now();
  const secs = ranges.find((r) => r[0] === range)[1];
  const every = stepFor(secs);
  // Bucket edges on multiples of every, so the next load lines up.
  const to = Math.ceil(Date.now() / 1000 / every) * every;
  const from = to - secs;
  const metrics = sel.metrics.slice();
  // The export link: every metric of the device over the chart's range.
  for (const format of ["csv", "jsonl"]) {
    const link = $(`#chart-export${format === "csv" ? "" : "-" + format}`);
    link.href = `/api/v1/export?${new URLSearchParams({
      station: sel.station, device: sel.device,
      from: new Date(from * 1000).toISOString(), to: new Date(to * 1000).toISOString(), format,
    })}`;
    link.title = t(`chart.exporttitle.${format}`);
  }
  try {
    const span = { from: new Date(from * 1000).toISOString(), to: new Date(to * 1000).toISOString() };
    const [answers, limits, events] = await Promise.all([
      Promise.all(metrics.map((metric) => getJSON(`/api/v1/series?${new URLSearchParams({
        station: sel.station, device: sel.device, metric, ...span, every: goDuration(every),
      })}`))),
      // Thresholds and events are extras: the chart draws without them.
      Promise.all(metrics.map((metric) => getJSON(`/api/v1/thresholds?${new URLSearchParams({
        station: sel.station, device: sel.device, metric,
      })}`).then((a) => a.thresholds || [], () => []))),
      getJSON(`/api/v1/events?${new URLSearchParams({ station: sel.station, device: sel.device, ...span, limit: "200" })}`)
        .catch(() => []),
    ]);
    if (!sel || JSON.stringify([sel, range]) !== want) return; // the picks changed meanwhile
    draw(metrics, answers, from, to, every, limits, events);
  } catch (e) {
    $("#chart-stats").textContent = t("chart.error", { msg: e.message });
  } finally {
    loading = false;
  }
}

// draw puts each answer on one time grid (from, from+every, …), a missing
// bucket a null (a gap in the line), and gives uPlot one y scale per unit.
function draw(metrics, answers, from, to, every, limits, events) {
  const n = Math.round((to - from) / every);
  const xs = new Array(n);
  for (let i = 0; i < n; i++) xs[i] = from + i * every;
  // A bucket without a value is undefined (uPlot draws the line across it)
  // unless it lies in a gap longer than three of the series' own usual
  // spacing (a sensor every 30 s in 5 s buckets is not a broken line):
  // those are null, which uPlot leaves blank.
  const counts = [0];
  const bands = [];
  const ys = answers.map((a, si) => {
    const col = new Array(n).fill(undefined);
    const lo = new Array(n).fill(null), hi = new Array(n).fill(null);
    const at = [];
    let banded = 0;
    for (const s of a.samples || []) {
      if (s.value === null || s.value === undefined) continue;
      const i = Math.round((Date.parse(s.time) / 1000 - from) / every);
      if (i >= 0 && i < n) {
        col[i] = s.value; at.push(i);
        // Aggregated buckets carry min and max; raw samples do not.
        if (Number.isFinite(s.min) && Number.isFinite(s.max)) { lo[i] = s.min; hi[i] = s.max; banded++; }
      }
    }
    if (banded) bands.push({ si: si + 1, lo, hi, every, color: palette[si % palette.length] });
    at.sort((x, y) => x - y);
    const diffs = at.slice(1).map((x, k) => x - at[k]).sort((x, y) => x - y);
    const usual = diffs.length ? diffs[Math.floor(diffs.length / 2)] : 1;
    for (let k = 1; k < at.length; k++) {
      if (at[k] - at[k - 1] > Math.max(3, 3 * usual)) for (let i = at[k - 1] + 1; i < at[k]; i++) col[i] = null;
    }
    counts.push(at.length);
    return col;
  });
  const units = metrics.map((m, i) => unitOf(m) || ((answers[i].samples || [])[0] || {}).unit || "");
  const scaleOf = (i) => (units[i] ? `u:${units[i]}` : `m:${metrics[i]}`);
  const extents = {};
  const extend = (sc, v) => {
    if (!Number.isFinite(v)) return;
    const e = extents[sc] || (extents[sc] = [v, v]);
    e[0] = Math.min(e[0], v); e[1] = Math.max(e[1], v);
  };
  for (const b of bands) {
    b.scale = scaleOf(b.si - 1);
    for (let k = 0; k < n; k++) if (b.lo[k] !== null) { extend(b.scale, b.lo[k]); extend(b.scale, b.hi[k]); }
  }
  const lines = [];
  (limits || []).forEach((ths, i) => {
    for (const th of ths) {
      const title = lang === "zh" && th.name_cn ? th.name_cn : th.name;
      const unit = units[i] ? ` ${unitName(units[i])}` : "";
      lines.push({ metric: metrics[i], rule: th.rule, severity: th.severity, op: th.op, value: th.value,
        color: sevColors[th.severity] || "#555", title, text: `${title} ${opSym[th.op] || th.op} ${fmt(th.value)}${unit}`, scale: scaleOf(i) });
      extend(scaleOf(i), th.value);
    }
  });
  const evs = (events || []).map((e) => ({ ...e, ts: Date.parse(e.time) / 1000 })).filter((e) => e.ts >= from && e.ts <= to);
  overlay = { bands, lines, events: evs, extents };
  const key = JSON.stringify([metrics, units, lang, every]);
  xr = [from, to];
  const data = [xs, ...ys];
  const any = counts.some((c) => c > 0);
  pointCounts = counts;
  // How many values each series drew, for the browser tests.
  const box = $("#chart-plot");
  box.dataset.values = counts.slice(1).join(",");
  // What the overlays drew, for the browser tests: the threshold lines,
  // the buckets with a min–max band (and those where max > min), events.
  box.dataset.thresholds = JSON.stringify(lines.map(({ metric, rule, severity, op, value, color, title }) =>
    ({ metric, rule, severity, op, value, color, title })));
  box.dataset.band = String(bands.reduce((k, b) => k + b.lo.filter((v) => v !== null).length, 0));
  box.dataset.bandspread = String(bands.reduce((k, b) => k + b.lo.filter((v, j) => v !== null && b.hi[j] > v).length, 0));
  box.dataset.events = String(evs.length);
  $("#chart-stats").textContent = any ? t("chart.stats", { n, every: goDuration(every) }) : t("chart.nodata");
  if (plot && plotKey === key) {
    plot.setData(data);
    return;
  }
  if (plot) plot.destroy();
  const scales = { x: { time: true, range: () => xr } };
  const axes = [{ label: t("chart.time", { tz: tzName() }), values: timeLabels, space: 60 }];
  const seen = [];
  metrics.forEach((m, i) => {
    const sc = scaleOf(i);
    if (seen.includes(sc)) return;
    seen.push(sc);
    scales[sc] = { range: (u, lo, hi) => rangeFor(sc, lo, hi) };
    if (seen.length <= 2) {
      axes.push({
        scale: sc, side: seen.length === 1 ? 3 : 1, grid: { show: seen.length === 1 },
        label: units[i] ? unitName(units[i]) : metricName(m), values: (u, vals) => vals.map((v) => fmt(v)), size: 56,
      });
    }
  });
  plot = new uPlot({
    ...size(),
    scales, axes,
    cursor: { drag: { x: true, y: false } },
    legend: { live: true },
    hooks: { drawAxes: [drawBands], draw: [drawLines, placeEvents] },
    series: [
      { label: t("chart.time", { tz: tzName() }), value: (u, ts) => (ts == null ? "—" : new Date(ts * 1000).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB")) },
      ...metrics.map((m, i) => ({
        label: `${metricName(m)}${units[i] ? ` (${unitName(units[i])})` : ""}`,
        scale: scaleOf(i), stroke: palette[i % palette.length], width: 1.5, spanGaps: false,
        // Points only where a series is sparse enough to need them.
        points: { show: (u, si) => pointCounts[si] <= 120, size: 5 }, value: (u, v) => fmt(v, m),
      })),
    ],
  }, data, $("#chart-plot"));
  plotKey = key;
}

// rangeFor is a y scale's range: its series' values, their bands and the
// thresholds drawn on it, with a margin.
function rangeFor(sc, lo, hi) {
  const e = overlay.extents[sc];
  if (e) {
    lo = lo == null ? e[0] : Math.min(lo, e[0]);
    hi = hi == null ? e[1] : Math.max(hi, e[1]);
  }
  if (lo == null || hi == null) return [0, 1];
  if (lo === hi) {
    const d = Math.abs(lo) * 0.1 || 1;
    return [lo - d, hi + d];
  }
  const m = (hi - lo) * 0.08;
  return [lo - m, hi + m];
}

const px = () => (uPlot.pxRatio || window.devicePixelRatio || 1);

// drawBands shades each bucket from its minimum to its maximum, under the
// lines (the drawAxes hook runs before the series are drawn).
function drawBands(u) {
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  const xs = u.data[0];
  if (!xs.length) return;
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();
  for (const b of overlay.bands) {
    if (!u.series[b.si] || !u.series[b.si].show || !u.scales[b.scale]) continue;
    ctx.fillStyle = `${b.color}33`;
    const w = Math.max(1, u.valToPos(xs[0] + b.every, "x", true) - u.valToPos(xs[0], "x", true));
    for (let k = 0; k < xs.length; k++) {
      if (b.lo[k] === null) continue;
      const x = u.valToPos(xs[k], "x", true);
      const y1 = u.valToPos(b.hi[k], b.scale, true), y0 = u.valToPos(b.lo[k], b.scale, true);
      ctx.fillRect(x, y1 - px(), w, Math.max(2 * px(), y0 - y1 + 2 * px()));
    }
  }
  ctx.restore();
}

// drawLines draws each threshold as a dashed line across the plot in its
// severity's colour, labelled with the rule's title and the value.
function drawLines(u) {
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.font = `${11 * px()}px sans-serif`;
  ctx.textAlign = "left"; // uPlot's axes leave their own alignment set
  ctx.textBaseline = "bottom";
  ctx.lineWidth = Math.round(2 * px()); // whole pixels: a crisp line at a whole y
  ctx.setLineDash([6 * px(), 4 * px()]);
  for (const l of overlay.lines) {
    if (!u.scales[l.scale]) continue;
    const y = Math.round(u.valToPos(l.value, l.scale, true));
    if (y < top || y > top + height) continue;
    ctx.strokeStyle = l.color;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + width, y);
    ctx.stroke();
    ctx.fillStyle = l.color;
    ctx.fillText(l.text, left + 4 * px(), y - 3 * px());
  }
  ctx.restore();
}

// placeEvents puts a small tick per event along the bottom of the plot,
// its kind, key and state in the tooltip.
function placeEvents(u) {
  for (const m of u.over.querySelectorAll(".ev-mark")) m.remove();
  const w = u.over.clientWidth;
  for (const e of overlay.events) {
    const x = u.valToPos(e.ts, "x");
    if (!(x >= 0 && x <= w)) continue;
    const a = e.attrs || {};
    const tip = [e.kind, e.key, a.state, new Date(e.time).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB")].filter(Boolean).join(" · ");
    const m = el("div", { class: `ev-mark ${e.kind}`, title: tip });
    m.style.left = `${x}px`;
    u.over.append(m);
  }
}

const pad = (x) => String(x).padStart(2, "0");

// timeLabels writes the time axis in the browser's zone: clock times under
// a day, with the date where the day changes; dates above; months above 4 weeks.
function timeLabels(u, splits, axisIdx, space, incr) {
  let prevDay = "";
  return splits.map((ts) => {
    const d = new Date(ts * 1000);
    const day = lang === "zh" ? `${d.getMonth() + 1}月${d.getDate()}日` : `${d.getDate()}/${d.getMonth() + 1}`;
    if (incr >= 28 * 86400) return lang === "zh" ? `${d.getFullYear()}年${d.getMonth() + 1}月` : `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;
    if (incr >= 86400) return day;
    let clock = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (incr < 60) clock += `:${pad(d.getSeconds())}`;
    const out = day !== prevDay ? `${clock}\n${day}` : clock;
    prevDay = day;
    return out;
  });
}

// relabel redraws in the current language.
export function relabel() {
  drawRangeButtons();
  if (!sel) return;
  drawPickers();
  plotKey = "";
  load(true);
}
