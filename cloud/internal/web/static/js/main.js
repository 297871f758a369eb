// Fieldwatch console: the map of stations and the active warnings, the
// selected station's devices and charts; zh-CN and English; ?kiosk=1 for a
// wall screen (map and warnings only, large type).
import { t, apply, setLang, onLang, locale } from "./i18n.js";
import { getJSON } from "./api.js";
import { $ } from "./util.js";
import { initMap, updateMap, relabel as relabelMap, panTo, showTrack, fitTrack } from "./map.js";
import { initAlerts, refreshAlerts, redrawAlerts, worstByStation, setStations as nameAlertStations } from "./alerts.js";
import { initStation, renderPicker, renderStation, summarize } from "./station.js";
import { initChart, setStations, openLinked, open as openChart, relabel as relabelChart } from "./chart.js";
import { initStats, showStats, relabel as relabelStats } from "./stats.js";
import { showInventory, refreshInventory, relabel as relabelInventory } from "./inventory.js";

const kiosk = new URLSearchParams(location.search).get("kiosk") === "1";
document.body.classList.toggle("kiosk", kiosk);
document.documentElement.classList.toggle("kiosk", kiosk);

let stations = [];
let worst = new Map();
let selected = null;

function setHash(h) {
  const url = location.pathname + location.search + (h ? `#${h}` : selected ? `#station=${selected}` : "");
  history.replaceState(null, "", url);
}

function select(id, pan) {
  selected = id;
  fitTrack(id);
  setHash(null);
  draw();
  if (pan) panTo(stations.find((s) => s.id === id)?.location);
  if (!kiosk) $("#station").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

function draw() {
  const missing = updateMap(stations, worst, selected);
  $("#map-note").textContent = missing ? t("map.nolocation", { n: missing }) : "";
  $("#summary").textContent = summarize(stations);
  if (kiosk) return;
  renderPicker(stations, worst, selected);
  renderStation(stations.find((s) => s.id === selected));
  showStats(selected);
  showTrack(stations.find((s) => s.id === selected));
}

async function refresh() {
  try {
    stations = await getJSON("/api/v1/stations");
    nameAlertStations(stations);
    if (!selected || !stations.some((s) => s.id === selected)) selected = stations.length ? stations[0].id : null;
    draw();
    if (!kiosk) setStations(stations);
    $("#error").hidden = true;
    $("#updated").textContent = t("updated", { time: new Date().toLocaleTimeString(locale()) });
    if (!kiosk) refreshInventory();
  } catch (e) {
    $("#error").hidden = false;
    $("#error").textContent = t("error.cloud", { msg: e.message });
  }
}

for (const b of document.querySelectorAll("[data-lang]")) b.addEventListener("click", () => setLang(b.dataset.lang));
onLang(() => {
  relabelMap();
  redrawAlerts();
  draw();
  if (!kiosk) { relabelChart(); relabelStats(); relabelInventory(); }
});

// Views: the map with its station (any other hash), or the inventory
// (#inventory). A link to #station=ID goes back to the map on that station.
function setView() {
  const inventory = !kiosk && location.hash === "#inventory";
  document.body.classList.toggle("view-inventory", inventory);
  for (const a of document.querySelectorAll("[data-view]")) {
    if ((a.dataset.view === "inventory") === inventory) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!kiosk) showInventory(inventory);
}
window.addEventListener("hashchange", () => {
  const m = /^#station=([\w.-]+)$/.exec(location.hash);
  setView();
  if (m && stations.some((s) => s.id === m[1])) select(m[1], true);
});
apply();

initMap($("#map"), { kiosk, legend: $("#map-legend"), track: $("#map-track"), onSelect: (id) => select(id, false) });
initAlerts({ kiosk, onChange: (alerts) => { worst = worstByStation(alerts); draw(); } });
if (!kiosk) {
  initStation({ onSelect: (id) => select(id, true), onMetric: (st, dev, m) => openChart(st, dev, m) });
  initChart({ onHash: setHash });
  initStats();
}

// Links: #station=ID selects a station; #chart=station/device/metric[,metric]
// opens that chart (the old page's links still work).
const station = /^#station=([\w.-]+)$/.exec(location.hash);
const chart = /^#chart=([\w.-]+)\/([\w.-]+)\/([\w.,-]+)$/.exec(location.hash);
if (station) {
  selected = station[1];
  fitTrack(selected);
}
if (chart && !kiosk) {
  selected = chart[1];
  openLinked(chart[1], chart[2], chart[3].split(",").filter(Boolean));
}

setView();
refresh();
refreshAlerts();
setInterval(refresh, 5000);
setInterval(refreshAlerts, 5000);
