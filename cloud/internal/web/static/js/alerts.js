// Early warnings: active alerts by colour, with acknowledge and silence,
// each in the page's language (the alerts carry summary_cn, cause_cn,
// runbook_cn …), and each station's alert history.
import { t, pick, locale, unitName } from "./i18n.js";
import { getJSON, sendJSON, apiToken } from "./api.js";
import { $, el, ago, fmt } from "./util.js";

export const colours = ["red", "orange", "yellow", "blue"];

let onChange = () => {};
let kiosk = false;

export function initAlerts(opts) {
  onChange = opts.onChange || onChange;
  kiosk = !!opts.kiosk;
}

// who is the name recorded with an action; with a token the cloud records
// the token's name, so none is asked for ("").
function who() {
  if (apiToken()) return "";
  const name = localStorage.getItem("fieldwatch-user") || prompt(t("prompt.who"));
  if (name) localStorage.setItem("fieldwatch-user", name);
  return name || null;
}

async function ack(a) {
  const by = who();
  if (by === null) return;
  const comment = prompt(t("prompt.ackcomment", { name: a.labels.alertname, where: a.labels.site || a.labels.gateway_id }), "") ?? "";
  await sendJSON("POST", `/api/v1/alerts/${a.fingerprint}/ack`, { by, comment });
  refreshAlerts();
}

async function silence(a) {
  const by = who();
  if (by === null) return;
  const hours = Number(prompt(t("prompt.hours"), "2"));
  if (!(hours > 0)) return;
  const comment = prompt(t("prompt.why"), "");
  if (!comment) return;
  const matchers = ["rule", "gateway_id", "device", "site"].filter((k) => a.labels[k])
    .map((k) => ({ name: k, op: "=", value: a.labels[k] }));
  const now = new Date();
  await sendJSON("POST", "/api/v1/silences", {
    matchers, starts_at: now.toISOString(), ends_at: new Date(now.getTime() + hours * 3600e3).toISOString(),
    created_by: by, comment,
  });
  refreshAlerts();
}

// Causes come first in a station's group: they explain the others.
const causeOrder = { CloudIntakeDown: 0, GatewayOffline: 1, BusDown: 2, DeviceSilent: 3 };

// groupAlerts puts the alerts by station (the cloud's own first), each
// group's causes first, then the most severe; an alert another one mutes
// is listed under it ("covered").
function groupAlerts(alerts) {
  const byFP = new Map(alerts.map((a) => [a.fingerprint, a]));
  const covered = new Map();
  const top = [];
  for (const a of alerts) {
    const by = a.inhibited_by && byFP.get(a.inhibited_by);
    if (by) {
      if (!covered.has(by.fingerprint)) covered.set(by.fingerprint, []);
      covered.get(by.fingerprint).push(a);
    } else top.push(a);
  }
  const groups = new Map();
  for (const a of top) {
    const key = a.labels.gateway_id || "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  const rank = (a) => causeOrder[a.labels.alertname] ?? 9;
  const sev = (a) => (a.state === "firing" ? colours.length - colours.indexOf(a.severity) : 0);
  for (const list of groups.values()) list.sort((x, y) => rank(x) - rank(y) || sev(y) - sev(x));
  const order = [...groups.keys()].sort((x, y) => (x === "" ? -1 : y === "" ? 1 : x.localeCompare(y)));
  return { order, groups, covered };
}

// worstByStation maps a station id to the colour of its most severe firing
// alert (covered and silenced ones too: the map shows the state of the
// field, not who has been told).
export function worstByStation(alerts) {
  const out = new Map();
  for (const a of alerts) {
    const st = a.labels.gateway_id;
    if (!st || a.state !== "firing" || !colours.includes(a.severity)) continue;
    const cur = out.get(st);
    if (!cur || colours.indexOf(a.severity) < colours.indexOf(cur)) out.set(st, a.severity);
  }
  return out;
}

function sevLabel(s) {
  return t(`sev.${s}`);
}

// alertRow is one alert with what explains it: the measure against its
// threshold, the cause and the devices it covers, the rule and standard,
// and what to do, in the page's language.
function alertRow(a, covered) {
  const n = a.annotations || {};
  const muted = a.silenced ? t("alert.silenced") : a.inhibited_by ? t("alert.muted") : "";
  const buttons = el("div", { class: "alert-actions" });
  if (!kiosk) {
    if (a.state === "firing" && !a.ack) buttons.append(el("button", { type: "button", onclick: () => ack(a).catch(alertError) }, t("alert.ack")));
    buttons.append(el("button", { type: "button", onclick: () => silence(a).catch(alertError) }, t("alert.silence")));
  }
  const where = [a.labels.device, a.labels.bus && t("alert.bus", { bus: a.labels.bus }), a.labels.metric].filter(Boolean).join(" / ");
  let measure = n.value_text || "";
  if (n.expected_in) measure = t("alert.expected", { value: n.value_text, target: n.target, in: pick(n, "expected_in"), trend: n.trend });
  else if (measure && n.threshold) measure += t("alert.threshold", { t: n.threshold });
  const runbook = pick(n, "runbook");
  const cause = pick(n, "cause");
  const body = el("div", { class: "alert-body" },
    el("div", {}, el("strong", {}, pick(n, "summary") || a.labels.alertname), where ? el("span", { class: "muted" }, ` · ${where}`) : ""),
    measure ? el("div", { class: "measure" }, measure) : "",
    cause ? el("div", { class: "cause" }, t("alert.cause", { c: cause })) : "",
    n.devices ? el("div", { class: "cause" }, t("alert.devices", { n: n.device_count, list: n.devices })) : "",
    n.also ? el("div", { class: "muted" }, t("alert.also", { x: n.also })) : "",
    el("div", { class: "muted rule" }, [t("alert.rule", { rule: a.rule }), pick(n, "standard")].filter(Boolean).join(" · ")),
    runbook && !kiosk ? el("details", { class: "runbook" }, el("summary", {}, t("alert.runbook")), el("div", {}, runbook)) : "",
    (covered || []).length ? el("div", { class: "covered muted" }, t("alert.covers", { x: covered.map((c) =>
      `${c.labels.alertname} ${c.labels.device || c.labels.bus || ""}`.trim()).join(", ") })) : "");
  const state = a.state === "firing" ? a.severity : "pending";
  return el("div", { class: `alert ${state}` },
    el("div", {}, el("span", { class: `sev ${state}` }, sevLabel(state)),
      el("div", { class: "muted since", title: a.since }, ago(a.starts_at || a.since))),
    body,
    el("div", { class: "muted alert-flags" }, [a.ack && t("alert.acked", { by: a.ack.by }), muted, a.flapping && t("alert.flapping")].filter(Boolean).join(" · ")),
    buttons);
}

function renderAlerts(alerts, silences) {
  const root = $("#alerts");
  const counts = Object.fromEntries(colours.map((c) => [c, 0]));
  for (const a of alerts) if (a.state === "firing" && !a.inhibited_by && counts[a.severity] !== undefined) counts[a.severity]++;
  const summary = el("div", { class: "alert-counts" },
    ...colours.map((c) => el("span", { class: `sev ${c}`, title: t("alerts.counttitle", { sev: sevLabel(c) }) }, `${counts[c]} ${sevLabel(c)}`)),
    el("span", { class: "muted" }, t("alerts.rest", { pending: alerts.filter((a) => a.state === "pending").length, silences: silences.length })));
  const head = el("h2", {}, t("alerts.title"));
  if (!alerts.length) {
    root.replaceChildren(head, summary, el("div", { class: "muted" }, t("alerts.none")));
    return;
  }
  const { order, groups, covered } = groupAlerts(alerts);
  const blocks = order.map((gw) => {
    const list = groups.get(gw);
    const site = list.find((a) => a.labels.site)?.labels.site;
    const named = names.get(gw);
    const place = (named && named.site_name) || site;
    const title = gw ? `${t("alerts.station", { id: (named && named.name) || gw })}${place ? " · " + place : ""}` : t("alerts.cloud");
    return el("div", { class: "alert-group" }, el("h3", {}, title),
      ...list.map((a) => alertRow(a, covered.get(a.fingerprint))));
  });
  root.replaceChildren(head, summary, ...blocks);
}

function alertError(e) {
  const b = $("#error");
  b.hidden = false;
  b.textContent = t("error.action", { msg: e.message });
}

let last = { alerts: [], silences: [] };

// names holds the stations' display names (station id → {name, site_name})
// for the groups' titles; setStations keeps it current.
let names = new Map(), namesKey = "", loaded = false;
export function setStations(stations) {
  const key = JSON.stringify(stations.map((st) => [st.id, st.name, st.site_name]));
  if (key === namesKey) return;
  namesKey = key;
  names = new Map(stations.map((st) => [st.id, { name: st.name, site_name: st.site_name }]));
  if (loaded) renderAlerts(last.alerts, last.silences); // titled by the new names at once
}

// refreshAlerts reads the active alerts and silences, draws them and tells
// onChange (the map colours its stations by them).
export async function refreshAlerts() {
  try {
    const [alerts, silences] = await Promise.all([getJSON("/api/v1/alerts"), getJSON("/api/v1/silences")]);
    last = { alerts, silences };
    loaded = true;
    renderAlerts(alerts, silences);
    onChange(alerts);
  } catch (e) {
    $("#alerts").replaceChildren(el("div", { class: "muted" }, t("alerts.unavailable", { msg: e.message })));
  }
}

// redrawAlerts draws the last answer again (after a change of language).
export function redrawAlerts() {
  renderAlerts(last.alerts, last.silences);
}

// showHistory lists a station's alert transitions in box: when, to what,
// which warning on which device, the value with its unit, the level it
// crossed and the rule.
export async function showHistory(station, box) {
  const hist = await getJSON(`/api/v1/alerts/history?station=${encodeURIComponent(station)}&limit=50`);
  const heads = ["th.when", "th.state", "history.th.alert", "th.device", "history.th.value", "history.th.threshold", "history.th.rule", ""];
  const rows = hist.map((h) => el("tr", { class: "history-row", "data-rule": h.rule, "data-to": h.to },
    el("td", { title: h.time }, new Date(h.time).toLocaleString(locale())),
    el("td", {}, el("span", { class: `sev ${h.to === "firing" ? h.severity : "pending"}` }, h.to === "firing" ? sevLabel(h.severity) : t(`history.${h.to}`))),
    el("td", {}, h.labels.alertname), el("td", {}, h.labels.device || ""),
    el("td", { class: "value" }, h.value_text || (h.unit ? `${fmt(h.value, h.labels.metric)} ${unitName(h.unit)}` : "")),
    el("td", { class: "threshold" }, h.threshold || ""), el("td", { class: "muted" }, h.rule),
    el("td", { class: "muted" }, h.backfilled ? t("history.backlog") : "")));
  box.replaceChildren(rows.length ? el("div", { class: "scroll-x" }, el("table", { class: "history" },
    el("thead", {}, el("tr", {}, ...heads.map((k) => el("th", {}, k ? t(k) : "")))), el("tbody", {}, ...rows)))
    : el("div", { class: "muted" }, t("history.none")));
}
