// The inventory (设备清单, GET /api/v1/inventory): every gateway's version,
// architecture, configuration version, uptime, last contact, backlog, disk,
// clock and devices, in a table sorted by any column; filtered by labels
// (county:laoshan kind:buoy, all must hold) and state; the same rows as CSV.
// Offline and stale (online but silent for two heartbeats) rows are marked.
import { t } from "./i18n.js";
import { getJSON, apiToken } from "./api.js";
import { $, el, fmt, ago, nameOf } from "./util.js";
import { sortableTable, nextSort } from "./table.js";

let rows = null, error = "", shown = false;
let filter = { labels: "", state: "" };
let draft = ""; // the label box as typed: a redraw at a refresh keeps it
let sort = { col: "id", dir: 1 };
let loading = 0; // the newest load; older answers are dropped

// rowState is a row's state as the page marks it: stale is an online
// gateway that stopped speaking.
const rowState = (r) => (r.state === "online" && r.stale ? "stale" : r.state);
const stateOrder = { online: 0, stale: 1, unknown: 2, offline: 3 };

const bytes = (n) => {
  if (n >= 1 << 30) return `${fmt(n / (1 << 30))} GiB`;
  if (n >= 1 << 20) return `${fmt(n / (1 << 20))} MiB`;
  if (n >= 1 << 10) return `${fmt(n / (1 << 10))} KiB`;
  return `${n} B`;
};
const diskUse = (r) => (r.buffer_max_bytes ? r.buffer_bytes / r.buffer_max_bytes : null);

function uptime(s) {
  if (s === undefined || s === null) return "—";
  if (s < 3600) return t("inv.min", { n: Math.floor(s / 60) });
  if (s < 172800) return t("inv.h", { n: fmt(s / 3600) });
  return t("inv.d", { n: fmt(s / 86400) });
}

function clockText(r) {
  if (!r.clock_quality) return "—";
  const q = t(`inv.clock.${r.clock_quality}`);
  if (r.clock_offset_s === undefined) return q;
  const ms = r.clock_offset_s * 1000;
  return `${q} ${ms >= 0 ? "+" : ""}${fmt(ms)} ms`;
}

function labelChips(r) {
  const keys = Object.keys(r.labels || {}).sort();
  if (!keys.length) return "—";
  return el("span", { class: "labels" }, ...keys.map((k) => el("button", {
    type: "button", class: "label-chip", "data-label": `${k}:${r.labels[k]}`, title: t("inv.addlabel"),
    onclick: () => addLabel(`${k}:${r.labels[k]}`),
  }, `${k}:${r.labels[k]}`)));
}

const columns = () => [
  { key: "state", value: (r) => stateOrder[rowState(r)], show: (r) => el("span", { class: `badge ${rowState(r)}` }, t(`inv.state.${rowState(r)}`)) },
  { key: "id", value: (r) => r.id, show: (r) => el("a", { href: `#station=${r.id}`, class: "device-id" }, nameOf(r)), title: (r) => r.id },
  { key: "site", value: (r) => r.site_name || r.site, show: (r) => r.site_name || r.site || "—" },
  { key: "labels", value: (r) => Object.keys(r.labels || {}).sort().map((k) => `${k}:${r.labels[k]}`).join(" "), show: labelChips },
  { key: "version", value: (r) => r.version,
    show: (r) => (r.version || "—") + (r.update ? ` → ${r.update}` : ""), title: (r) => (r.update ? t("inv.update", { u: r.update }) : "") },
  { key: "arch", value: (r) => r.arch, show: (r) => r.arch || "—" },
  { key: "config", value: (r) => r.config_version, num: true,
    show: (r) => (r.config_version === undefined ? "—" : r.config_version ? `v${r.config_version}` : t("inv.config.local")) },
  { key: "uptime", value: (r) => r.uptime_s, show: (r) => uptime(r.uptime_s), num: true },
  { key: "last_seen", value: (r) => r.last_seen, show: (r) => ago(r.last_seen), title: (r) => r.last_seen || "" },
  { key: "backlog", value: (r) => r.backlog, show: (r) => String(r.backlog), num: true },
  { key: "disk", value: diskUse, num: true,
    show: (r) => (diskUse(r) === null ? "—" : `${(diskUse(r) * 100).toFixed(1)}% / ${bytes(r.buffer_max_bytes)}`),
    title: (r) => (diskUse(r) === null ? "" : `${bytes(r.buffer_bytes)} / ${bytes(r.buffer_max_bytes)}`) },
  { key: "clock", value: (r) => r.clock_offset_s ?? (r.clock_quality ? 0 : null), show: clockText,
    title: (r) => (r.clock_max_error_s === undefined ? "" : t("inv.maxerror", { ms: fmt(r.clock_max_error_s * 1000) })) },
  { key: "devices", value: (r) => r.devices, show: (r) => String(r.devices), num: true },
  { key: "faulty", value: (r) => r.faulty_devices, show: (r) => String(r.faulty_devices), num: true },
];

function query() {
  const q = new URLSearchParams();
  for (const l of filter.labels.split(/[\s,，]+/).filter(Boolean)) q.append("label", l);
  if (filter.state) q.set("state", filter.state);
  return q.toString();
}

function addLabel(l) {
  const have = filter.labels.split(/[\s,，]+/).filter(Boolean);
  if (!have.includes(l)) filter.labels = [...have, l].join(" ");
  draft = filter.labels;
  load();
}

// showInventory shows or hides the inventory; shown, it loads at once and
// at each refresh.
export function showInventory(on) {
  shown = on;
  $("#inventory").hidden = !on;
  if (on) load();
}

// refreshInventory loads the rows again if the inventory is shown.
export function refreshInventory() {
  if (shown) load();
}

export function relabel() {
  if (shown) render();
}

async function load() {
  const n = ++loading;
  try {
    const out = await getJSON(`/api/v1/inventory?${query()}`);
    if (n !== loading) return;
    rows = out.gateways;
    error = "";
  } catch (e) {
    if (n !== loading) return;
    rows = null;
    error = e.message;
  }
  render();
}

// download fetches the CSV with the API token (a link cannot send one) and
// saves it under the cloud's file name.
async function download(ev) {
  if (!apiToken()) return; // the link works as it is
  ev.preventDefault();
  const a = ev.currentTarget;
  try {
    const r = await fetch(a.href, { headers: { Authorization: `Bearer ${apiToken()}` }, cache: "no-store" });
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    const name = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "")?.[1] || "fieldwatch-inventory.csv";
    const url = URL.createObjectURL(await r.blob());
    const tmp = el("a", { href: url, download: name });
    document.body.append(tmp);
    tmp.click();
    tmp.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) {
    error = e.message;
    render();
  }
}

function render() {
  const root = $("#inventory");
  // Keep the focus and caret in the label box while the table is redrawn.
  const focused = document.activeElement && document.activeElement.id === "inventory-labels";
  const caret = focused ? document.activeElement.selectionStart : 0;
  const input = el("input", {
    id: "inventory-labels", type: "search", value: draft, placeholder: "county:laoshan kind:buoy",
    "aria-label": t("inv.labels"), spellcheck: "false",
    oninput: (e) => { draft = e.target.value; },
    onchange: (e) => { draft = e.target.value; filter.labels = draft.trim(); load(); },
  });
  const states = el("div", { class: "segmented", role: "group", "aria-label": t("inv.col.state") },
    ...["", "online", "offline"].map((s) => el("button", {
      type: "button", "data-state": s || "all", "aria-pressed": String(s === filter.state),
      onclick: () => { filter.state = s; load(); },
    }, t(`inv.filter.${s || "all"}`))));
  const link = el("a", { id: "inventory-export", href: `/api/v1/inventory.csv?${query()}`, download: "",
    title: t("inv.exporttitle"), onclick: download }, t("inv.export"));
  const tools = el("div", { class: "chart-tools" },
    el("label", {}, el("span", {}, t("inv.labels")), " ", input), states, link);
  let body;
  if (error) body = el("div", { class: "err" }, t("inv.error", { msg: error }));
  else if (!rows) body = el("div", { class: "muted" }, t("loading"));
  else if (!rows.length) body = el("div", { class: "muted" }, t("inv.none"));
  else {
    const cols = columns().map((c) => ({ ...c, label: t(`inv.col.${c.key}`) }));
    body = el("div", { class: "scroll-x" }, sortableTable({
      cls: "stats inventory", columns: cols, rows, sort, tie: (a, b) => a.id.localeCompare(b.id),
      onSort: (key) => { sort = nextSort(sort, key); render(); },
      rowAttrs: (r) => ({ "data-id": r.id, "data-state": rowState(r), class: `inv-${rowState(r)}` }),
    }));
  }
  const count = rows ? el("div", { class: "muted", id: "inventory-count" }, t("inv.count", { n: rows.length })) : "";
  root.replaceChildren(el("h2", {}, t("inv.title")), tools, count, body);
  if (focused) {
    const i = $("#inventory-labels");
    i.focus();
    i.setSelectionRange(caret, caret);
  }
}
