// Fieldwatch dashboard, early warnings: active alerts by colour, with
// acknowledge and silence, and each station's alert history.
"use strict";

const colours = ["red", "orange", "yellow", "blue"];

function sendJSON(method, url, body) {
  return api(method, url, body, true);
}

// who is the name recorded with an action; with a token the cloud records
// the token's name, so none is asked for ("").
function who() {
  if (apiToken()) return "";
  const name = localStorage.getItem("fieldwatch-user") || prompt("Your name, recorded with the action:");
  if (name) localStorage.setItem("fieldwatch-user", name);
  return name || null;
}

async function ack(a) {
  const by = who();
  if (by === null) return;
  const comment = prompt(`Acknowledge ${a.labels.alertname} at ${a.labels.site || a.labels.gateway_id}: comment`, "") ?? "";
  await sendJSON("POST", `/api/v1/alerts/${a.fingerprint}/ack`, { by, comment });
  refreshAlerts();
}

async function silence(a) {
  const by = who();
  if (by === null) return;
  const hours = Number(prompt("Silence this alert for how many hours?", "2"));
  if (!(hours > 0)) return;
  const comment = prompt("Why (recorded with the silence)?", "");
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

// alertRow is one alert with what explains it: the measure against its
// threshold, the cause and the devices it covers, the rule and standard,
// and what to do.
function alertRow(a, covered) {
  const n = a.annotations;
  const muted = a.silenced ? "silenced" : a.inhibited_by ? "muted" : "";
  const buttons = el("div", { class: "alert-actions" });
  if (a.state === "firing" && !a.ack) buttons.append(el("button", { type: "button", onclick: () => ack(a).catch(alertError) }, "ack"));
  buttons.append(el("button", { type: "button", onclick: () => silence(a).catch(alertError) }, "silence"));
  const where = [a.labels.device, a.labels.bus && `bus ${a.labels.bus}`, a.labels.metric].filter(Boolean).join(" / ");
  let measure = n.value_text || "";
  if (n.expected_in) measure = `${n.value_text}, expected to reach ${n.target} in ${n.expected_in} (${n.trend})`;
  else if (measure && n.threshold) measure += ` — threshold ${n.threshold}`;
  const body = el("div", { class: "alert-body" },
    el("div", {}, el("strong", {}, n.summary || a.labels.alertname), where ? el("span", { class: "muted" }, ` · ${where}`) : ""),
    n.summary_cn ? el("div", { class: "cn" }, n.summary_cn) : "",
    measure ? el("div", { class: "measure" }, measure) : "",
    n.cause ? el("div", { class: "cause" }, `Cause: ${n.cause}`) : "",
    n.devices ? el("div", { class: "cause" }, `Devices (${n.device_count}): ${n.devices}`) : "",
    n.also ? el("div", { class: "muted" }, `Also: ${n.also}`) : "",
    el("div", { class: "muted" }, `Rule ${a.rule} · ${n.standard || ""}`),
    n.runbook || n.runbook_cn ? el("details", { class: "runbook" }, el("summary", {}, "What to do / 处置"),
      n.runbook ? el("div", {}, n.runbook) : "", n.runbook_cn ? el("div", { class: "cn" }, n.runbook_cn) : "") : "",
    (covered || []).length ? el("div", { class: "covered muted" }, `Covers: ${covered.map((c) =>
      `${c.labels.alertname} ${c.labels.device || c.labels.bus || ""}`.trim()).join(", ")}`) : "");
  const state = a.state === "firing" ? a.severity : "pending";
  return el("div", { class: `alert sev-row ${state}` },
    el("div", {}, el("span", { class: `sev ${state}` }, state),
      el("div", { class: "muted since", title: a.since }, ago(a.starts_at || a.since))),
    body,
    el("div", { class: "muted alert-flags" }, [a.ack && `acked by ${a.ack.by}`, muted, a.flapping && "flapping"].filter(Boolean).join(" · ")),
    buttons);
}

function renderAlerts(alerts, silences) {
  const root = document.querySelector("#alerts");
  const counts = Object.fromEntries(colours.map((c) => [c, 0]));
  for (const a of alerts) if (a.state === "firing" && !a.inhibited_by) counts[a.severity]++;
  const summary = el("div", { class: "alert-counts" },
    ...colours.map((c) => el("span", { class: `sev ${c}`, title: `${c} alerts firing, not counting those another covers` }, `${counts[c]} ${c}`)),
    el("span", { class: "muted" }, `${alerts.filter((a) => a.state === "pending").length} pending · ${silences.length} silences`));
  if (!alerts.length) {
    root.replaceChildren(el("h2", {}, "Early warnings"), summary, el("div", { class: "muted" }, "No active early warnings."));
    return;
  }
  const { order, groups, covered } = groupAlerts(alerts);
  const blocks = order.map((gw) => {
    const list = groups.get(gw);
    const site = list.find((a) => a.labels.site)?.labels.site;
    const title = gw ? `Station ${gw}${site ? " · " + site : ""}` : "The cloud itself";
    return el("div", { class: "alert-group" }, el("h3", {}, title),
      ...list.map((a) => alertRow(a, covered.get(a.fingerprint))));
  });
  root.replaceChildren(el("h2", {}, "Early warnings"), summary, ...blocks);
}

function alertError(e) {
  const b = document.querySelector("#error");
  b.hidden = false;
  b.textContent = `Alert action failed: ${e.message}`;
}

async function refreshAlerts() {
  try {
    const [alerts, silences] = await Promise.all([getJSON("/api/v1/alerts"), getJSON("/api/v1/silences")]);
    renderAlerts(alerts, silences);
  } catch (e) {
    document.querySelector("#alerts").replaceChildren(el("div", { class: "muted" }, `Early warnings unavailable: ${e.message}`));
  }
}

// showHistory lists a station's alert transitions under its card.
async function showHistory(station, box) {
  const hist = await getJSON(`/api/v1/alerts/history?station=${encodeURIComponent(station)}&limit=50`);
  const rows = hist.map((h) => el("tr", {},
    el("td", { title: h.time }, new Date(h.time).toLocaleString()),
    el("td", {}, el("span", { class: `sev ${h.to === "firing" ? h.severity : "pending"}` }, h.to === "firing" ? h.severity : h.to)),
    el("td", {}, h.labels.alertname), el("td", {}, h.labels.device || ""), el("td", {}, fmt(h.value)),
    el("td", { class: "muted" }, h.backfilled ? "from backlog" : "")));
  box.replaceChildren(rows.length ? el("table", {}, ...rows) : el("div", { class: "muted" }, "No alert history in the last 7 days."));
}

refreshAlerts();
setInterval(refreshAlerts, 5000);
