// The selected station: its devices with their health and latest values
// (a value opens its chart), recent events and alert history; and the list
// of all stations to pick from without the map.
import { t, metricName, unitName, locale } from "./i18n.js";
import { $, el, ago, fmt, nameOf } from "./util.js";
import { showHistory } from "./alerts.js";

// A gateway always holds the few readings of its last unacknowledged batch;
// only a real backlog (a link outage) is worth showing.
const backlogShown = 100;

let onSelect = () => {}, onMetric = () => {};

export function initStation(opts) {
  onSelect = opts.onSelect;
  onMetric = opts.onMetric;
}

// renderPicker lists every station as a button, coloured like its marker.
export function renderPicker(stations, worst, selected) {
  const root = $("#station-list");
  if (!stations.length) {
    root.replaceChildren(el("div", { class: "empty" }, t("stations.none")));
    return;
  }
  root.replaceChildren(...stations.map((st) => {
    const status = st.state === "offline" ? "offline" : worst.get(st.id) || "fine";
    return el("button", {
      type: "button", class: `station-pick${st.id === selected ? " selected" : ""}`, "data-station": st.id,
      "aria-pressed": String(st.id === selected), onclick: () => onSelect(st.id), title: st.name ? st.id : undefined,
    }, el("span", { class: `dot ${status}` }), el("span", { class: "station-name" }, nameOf(st)),
    el("span", { class: `badge ${st.state}` }, t(`state.${st.state}`)));
  }));
}

// summarize counts stations online and devices reporting, for the header.
export function summarize(stations) {
  let online = 0, devices = 0, healthy = 0, attention = 0;
  for (const st of stations) {
    if (st.state === "online") online++;
    for (const d of st.devices) {
      devices++;
      if (d.state === "ok") healthy++;
      else if (d.state === "late" || d.state === "failing") attention++;
    }
  }
  return t("summary", { online, stations: stations.length, healthy, devices }) +
    (attention ? t("summary.attention", { n: attention }) : "");
}

// Stations whose alert history is open survive the refresh.
const historyOpen = new Set();

function historyBox(station) {
  const box = el("div", {});
  const d = el("details", {}, el("summary", { class: "muted" }, t("history.title")), box);
  const load = () => showHistory(station, box).catch((e) => box.replaceChildren(e.message));
  d.addEventListener("toggle", () => {
    if (d.open) { historyOpen.add(station); load(); } else historyOpen.delete(station);
  });
  if (historyOpen.has(station)) { d.open = true; load(); }
  return d;
}

export function renderStation(st) {
  const root = $("#station");
  if (!st) { root.replaceChildren(); return; }
  const card = el("article", { class: `station ${st.state}`, "data-station": st.id });
  const site = st.site_name ? `${st.site_name} (${st.site})` : st.site;
  const where = [site && t("station.site", { site }),
    st.location && `${st.location.lat.toFixed(4)}, ${st.location.lon.toFixed(4)}`].filter(Boolean).join(" · ");
  card.append(
    el("h2", {}, el("span", { class: "station-name" }, nameOf(st)), st.name ? el("span", { class: "muted station-id" }, st.id) : "",
      el("span", { class: `badge ${st.state}` }, t(`state.${st.state}`))),
    el("div", { class: "meta muted" },
      [where, t("station.heard", { ago: ago(st.last_seen) }),
        st.buffered >= backlogShown ? t("station.backlog", { n: st.buffered }) : "",
        st.version && t("station.version", { v: st.version })].filter(Boolean).join(" · ")),
  );
  const table = el("table", { class: "devices" },
    el("thead", {}, el("tr", {}, el("th", {}, t("th.device")), el("th", {}, t("th.state")), el("th", {}, t("th.latest")))));
  const body = el("tbody");
  for (const d of st.devices) {
    const metrics = el("div", { class: "metrics" });
    for (const s of d.latest) {
      const stale = d.state !== "ok";
      const btn = el("button", {
        type: "button", "data-device": d.id, "data-metric": s.metric,
        class: `metric ${s.quality !== "good" ? s.quality : ""} ${stale ? "stale" : ""}`,
        title: t("metric.title", { metric: metricName(s.metric), time: new Date(s.time).toLocaleString(locale()), quality: t(`quality.${s.quality}`) }),
        onclick: () => onMetric(st.id, d.id, s.metric),
      }, el("span", { class: "name" }, metricName(s.metric)), el("span", { class: "value" }, `${fmt(s.value, s.metric)} ${unitName(s.unit)}`));
      metrics.append(btn);
    }
    const info = el("div", {}, el("div", { class: "device-id" }, d.id), el("div", { class: "muted" }, d.profile || ""));
    if (d.location) info.append(el("div", { class: "muted" }, t("device.at", { lat: d.location.lat.toFixed(5), lon: d.location.lon.toFixed(5) })));
    if (d.events) info.append(el("div", { class: "muted" }, t("device.events", { n: d.events })));
    const state = el("div", {}, el("span", { class: `badge ${d.state}` }, t(`state.${d.state}`)), el("div", { class: "muted" }, ago(d.last_seen)));
    if (d.error) state.append(el("div", { class: "err" }, d.error));
    body.append(el("tr", {},
      el("td", { "data-label": t("th.device") }, info),
      el("td", { "data-label": t("th.state") }, state),
      el("td", { "data-label": t("th.latest") }, metrics)));
  }
  table.append(body);
  card.append(table);
  if (st.events && st.events.length) card.append(renderEvents(st.events.slice(0, 8)));
  card.append(historyBox(st.id));
  root.replaceChildren(card);
}

// renderEvents lists a station's newest events: tags read, buoys adrift.
function renderEvents(events) {
  const list = el("table", { class: "events" }, el("thead", {}, el("tr", {},
    el("th", {}, t("th.event")), el("th", {}, t("th.device")), el("th", {}, t("th.when")), el("th", {}, t("th.details")))));
  const body = el("tbody");
  for (const e of events) {
    const a = e.attrs || {}, v = e.values || {};
    let what = e.kind, details = "";
    if (e.kind === "tag") {
      what = t("event.tag", { key: e.key });
      details = [a.tag_type, a.state, v.count !== undefined && t("event.reads", { n: v.count }), v.duration_s !== undefined && `${fmt(v.duration_s)} s`]
        .filter(Boolean).join(" · ");
    } else if (e.kind === "drift") {
      what = a.state === "returned" ? t("event.returned") : t("event.adrift");
      details = [v.distance_m !== undefined && t("event.frommooring", { m: fmt(v.distance_m) }),
        v.radius_m !== undefined && t("event.radius", { m: fmt(v.radius_m) }),
        v.lat !== undefined && `${v.lat.toFixed(5)}, ${v.lon.toFixed(5)}`].filter(Boolean).join(" · ");
    } else {
      details = Object.entries(a).concat(Object.entries(v)).map(([k, x]) => `${k} ${x}`).join(" · ");
    }
    body.append(el("tr", { class: e.kind === "drift" && a.state !== "returned" ? "alarm" : "" },
      el("td", { "data-label": t("th.event") }, what), el("td", { "data-label": t("th.device") }, e.device),
      el("td", { "data-label": t("th.when"), title: e.time }, ago(e.time)),
      el("td", { "data-label": t("th.details"), class: "muted" }, details)));
  }
  list.append(body);
  return el("div", { class: "events-box" }, el("div", { class: "muted" }, t("events.title")), list);
}
