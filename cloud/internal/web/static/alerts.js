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

function renderAlerts(alerts, silences) {
  const root = document.querySelector("#alerts");
  const counts = Object.fromEntries(colours.map((c) => [c, 0]));
  for (const a of alerts) if (a.state === "firing") counts[a.severity]++;
  const summary = el("div", { class: "alert-counts" },
    ...colours.map((c) => el("span", { class: `sev ${c}`, title: `${c} alerts firing` }, `${counts[c]} ${c}`)),
    el("span", { class: "muted" }, `${alerts.filter((a) => a.state === "pending").length} pending · ${silences.length} silences`));
  const rows = alerts.map((a) => {
    const muted = a.silenced ? "silenced" : a.inhibited_by ? "muted: gateway offline" : "";
    const what = a.annotations.summary || a.labels.alertname;
    const buttons = el("td", {});
    if (a.state === "firing" && !a.ack) buttons.append(el("button", { type: "button", onclick: () => ack(a).catch(alertError) }, "ack"));
    buttons.append(el("button", { type: "button", onclick: () => silence(a).catch(alertError) }, "silence"));
    return el("tr", { class: `sev-row ${a.state === "firing" ? a.severity : "pending"}` },
      el("td", {}, el("span", { class: `sev ${a.state === "firing" ? a.severity : "pending"}` }, a.state === "firing" ? a.severity : "pending")),
      el("td", {}, el("strong", {}, what), el("div", { class: "muted" }, a.annotations.standard || "")),
      el("td", {}, [a.labels.site, a.labels.device, a.labels.metric].filter(Boolean).join(" / ") || a.labels.gateway_id),
      el("td", {}, `${fmt(a.value)} ${a.annotations.threshold ? "(" + a.annotations.threshold + ")" : ""}`),
      el("td", { title: a.since }, ago(a.starts_at || a.since)),
      el("td", { class: "muted" }, [a.ack && `acked by ${a.ack.by}`, muted, a.flapping && "flapping"].filter(Boolean).join(" · ")),
      buttons);
  });
  const table = rows.length
    ? el("table", {}, el("tr", {}, ...["", "warning", "where", "value", "since", "", ""].map((h) => el("th", {}, h))), ...rows)
    : el("div", { class: "muted" }, "No active early warnings.");
  root.replaceChildren(el("h2", {}, "Early warnings"), summary, table);
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
