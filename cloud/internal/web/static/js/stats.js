// Statistics of the selected station (GET /api/v1/stats): per device,
// metric and day, week or month, the completeness (received ÷ expected
// from the declared interval), validity (good ÷ received), timeliness
// (delay from acquisition to storage), min/mean/max of the good values
// and each rule's exceedances. A table sorted by any column (click its
// header), and the same rows as CSV.
import { t, metricName, unitName } from "./i18n.js";
import { getJSON } from "./api.js";
import { $, el, fmt } from "./util.js";
import { sortableTable, nextSort } from "./table.js";

const periods = ["day", "week", "month"];

let station = null, period = "day", data = null, error = "";
let sort = { col: "period", dir: 1 }; // dir 1 ascending, -1 descending
let loading = 0; // the newest load; older answers are dropped

// The columns: key, label, the row's value (a number, string or null: what
// sorts and what data-value says), and how the cell shows it.
const pct = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);
const secs = (v) => (v === null || v === undefined ? "—" : `${fmt(v)} s`);
const exceedCount = (r) => r.exceedances.reduce((n, x) => n + x.count, 0);
const exceedSecs = (r) => r.exceedances.reduce((n, x) => n + x.duration_s, 0);
const columns = [
  { key: "period", value: (r) => r.period_start, show: (r) => periodLabel(r.period_start) },
  { key: "device", value: (r) => r.device, show: (r) => r.device },
  { key: "metric", value: (r) => r.metric, show: (r) => `${metricName(r.metric)}${r.unit ? ` (${unitName(r.unit)})` : ""}` },
  { key: "expected", value: (r) => r.expected, show: (r) => (r.expected === null ? "—" : String(r.expected)), num: true },
  { key: "received", value: (r) => r.received, show: (r) => String(r.received), num: true },
  { key: "completeness", value: (r) => r.completeness, show: (r) => pct(r.completeness), num: true },
  { key: "validity", value: (r) => r.validity, show: (r) => pct(r.validity), num: true },
  { key: "delay_mean", value: (r) => r.delay_mean, show: (r) => secs(r.delay_mean), num: true },
  { key: "delay_max", value: (r) => r.delay_max, show: (r) => secs(r.delay_max), num: true },
  { key: "min", value: (r) => r.min, show: (r) => fmt(r.min, r.metric), num: true },
  { key: "mean", value: (r) => r.mean, show: (r) => fmt(r.mean, r.metric), num: true },
  { key: "max", value: (r) => r.max, show: (r) => fmt(r.max, r.metric), num: true },
  { key: "exceedances", value: exceedCount, show: exceedText, num: true },
  { key: "exceed_s", value: exceedSecs, show: (r) => (r.exceedances.length ? duration(exceedSecs(r)) : "—"), num: true },
];

function periodLabel(iso) {
  // The period's start as the bureau's calendar has it (the API writes it
  // with the zone's offset): the date part as written, not re-zoned.
  const day = iso.slice(0, 10);
  if (period === "month") return day.slice(0, 7);
  if (period === "week") return t("stats.weekof", { day });
  return day;
}

function duration(s) {
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return t("stats.min", { n: Math.round(s / 60) });
  return t("stats.h", { n: fmt(s / 3600) });
}

function exceedText(r) {
  if (!r.exceedances.length) return "—";
  return r.exceedances.map((x) => `${x.rule} ×${x.count}`).join(", ");
}

export function initStats() {
  $("#stats").hidden = true;
}

// statsEvery is how often the statistics of the station shown are asked
// again: the page refreshes every 5 s, statistics need not (a click on the
// period shown loads them at once), but a warning that fires must show in
// the exceedances without a reload.
const statsEvery = 60000;
let loadedAt = 0;

// showStats shows the statistics of station id, loading them when the
// station changed or statsEvery has passed.
export function showStats(id) {
  if (id === station && Date.now() - loadedAt < statsEvery) return;
  loadedAt = Date.now();
  if (id !== station) data = null;
  station = id;
  load();
}

// relabel redraws in the page's language.
export function relabel() {
  render();
}

async function load() {
  const n = ++loading;
  render();
  if (!station) return;
  try {
    const out = await getJSON(`/api/v1/stats?${query()}`);
    if (n !== loading) return;
    data = out;
    error = "";
  } catch (e) {
    if (n !== loading) return;
    data = null;
    error = e.message;
  }
  render();
}

function query(csv) {
  const q = new URLSearchParams({ station, period });
  if (csv) q.set("format", "csv");
  return q.toString();
}

const tie = (a, b) => a.period_start.localeCompare(b.period_start) || a.device.localeCompare(b.device) ||
  a.metric.localeCompare(b.metric);

function render() {
  const root = $("#stats");
  root.hidden = !station;
  if (!station) { root.replaceChildren(); return; }
  const buttons = el("div", { class: "segmented", role: "group", "aria-label": t("stats.period") },
    ...periods.map((p) => el("button", {
      type: "button", "data-period": p, "aria-pressed": String(p === period),
      onclick: () => { period = p; data = null; load(); }, // the chosen one again: reload
    }, t(`stats.${p}`))));
  const link = el("a", { id: "stats-export", href: `/api/v1/stats?${query(true)}`, download: "", title: t("stats.exporttitle") },
    t("stats.export"));
  const head = el("div", { class: "chart-tools" }, buttons, link);
  const note = el("div", { class: "muted" });
  let body;
  if (error) body = el("div", { class: "err" }, t("stats.error", { msg: error }));
  else if (!data) body = el("div", { class: "muted" }, t("loading"));
  else if (!data.rows.length) body = el("div", { class: "muted" }, t("stats.none"));
  else {
    note.textContent = t("stats.note", { tz: data.timezone });
    body = el("div", { class: "scroll-x" }, table(data.rows));
  }
  root.replaceChildren(el("h2", {}, t("stats.title")), head, note, body);
}

function table(rows) {
  const cols = columns.map((c) => ({
    ...c, label: t(`stats.col.${c.key}`),
    title: c.key === "exceedances" ? (r) => r.exceedances.map((x) => `${x.rule}: ${x.count}, ${duration(x.duration_s)}`).join("\n") : null,
  }));
  return sortableTable({
    cls: "stats", columns: cols, rows, sort, tie,
    onSort: (key) => { sort = nextSort(sort, key); render(); },
    rowAttrs: (r) => ({ "data-device": r.device, "data-metric": r.metric, "data-period": r.period_start }),
  });
}
