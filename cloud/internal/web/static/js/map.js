// The station map: Leaflet over an offline basemap, Natural Earth's land at
// 1:50m from the vendored world-atlas (coastlines only, no national
// boundaries; docs/decisions.md), each station a circle coloured by its
// worst firing alert, grey when offline. No tiles, nothing from elsewhere.
// Stations closer than clusterPx at the current zoom are drawn as one
// numbered marker (grid-free greedy clustering, docs/decisions.md §25); the
// selected station's track (latitude/longitude series) and its mooring
// circle (from its newest drift event) are drawn over them.
import { L, topojson } from "./vendor.js";
import { t } from "./i18n.js";
import { el } from "./util.js";
import { getJSON } from "./api.js";

const landURL = "/static/vendor/world-atlas-2.0.2/land-50m.json";

// The page's alert colours (style.css), and the two states without one.
const fill = {
  red: "#c0262d", orange: "#e0661b", yellow: "#d4a106", blue: "#1f5fbf",
  fine: "#1f9a7a", offline: "#8a938e",
};

let map, layer, onSelect, big = false;
const markers = new Map(); // station id → circle marker
let fitted = false, fitting = false, firstView = () => {};
let last = { stations: [], worst: new Map(), selected: null }; // for redraws on zoom
let clusterLayer, trackLayer;

export function initMap(node, opts) {
  onSelect = opts.onSelect;
  big = !!opts.kiosk;
  map = L.map(node, {
    center: [35, 110], zoom: 4, minZoom: 2, maxZoom: 11, worldCopyJump: true,
    preferCanvas: false, zoomSnap: 0.5, attributionControl: true, zoomControl: !big,
  });
  map.attributionControl.setPrefix("Leaflet");
  map.attributionControl.addAttribution(t("map.basemap"));
  const renderer = L.canvas({ padding: 0.5 });
  // The coastline is drawn after the stations' first view has been painted,
  // or 1 s from now if that is sooner (no stations, a slow answer): turning
  // the outline into shapes takes longer than drawing the stations, which
  // are what the page is for, and drawn after the view is fitted it is
  // projected once, not again at the new zoom (docs/decisions.md).
  const drawn = new Promise((done) => { firstView = done; setTimeout(done, 1000); });
  Promise.all([fetch(landURL).then((r) => r.json()), drawn]).then(([topo]) => {
    const land = topojson.feature(topo, topo.objects.land);
    L.geoJSON(land, {
      renderer, interactive: false,
      style: { color: "#8da39a", weight: 1, fillColor: "#e9ede4", fillOpacity: 1 },
    }).addTo(map).bringToBack();
  }).catch((e) => console.warn("basemap:", e));
  trackLayer = L.layerGroup().addTo(map);
  layer = L.layerGroup().addTo(map);
  clusterLayer = L.layerGroup().addTo(map);
  map.on("zoomend", () => { if (!fitting) updateMap(last.stations, last.worst, last.selected); });
  trackBox = opts.track;
  legendBox = opts.legend;
  drawLegend();
  // The box changes size without a window resize (a scroll bar appears,
  // the layout switches to one column): Leaflet must be told.
  new ResizeObserver(() => requestAnimationFrame(() => map.invalidateSize())).observe(node);
}

// The legend sits under the map, not on it: on a phone it would cover the
// zoom buttons.
let legendBox = null;
function drawLegend() {
  legendBox.replaceChildren(...["red", "orange", "yellow", "blue", "fine", "offline"].map((k) =>
    el("span", { class: `key ${k}` }, t(k === "fine" || k === "offline" ? `map.legend.${k}` : `sev.${k}`))));
}

// relabel redraws what the map says in words (after a change of language).
export function relabel() {
  if (!map) return;
  drawLegend();
  if (trackBox && !trackBox.hidden) drawTrackButtons(true);
  map.attributionControl.remove();
  map.attributionControl = L.control.attribution({ prefix: "Leaflet" }).addAttribution(t("map.basemap")).addTo(map);
}

// updateMap places every station with a location; worst maps a station id
// to its worst alert colour. Returns how many stations have no location.
export function updateMap(stations, worst, selected) {
  if (!map) return 0;
  last = { stations, worst, selected };
  const seen = new Set();
  let missing = 0;
  if (!fitted) {
    const all = stations.filter((st) => st.location).map((st) => [st.location.lat, st.location.lon]);
    if (all.length) {
      // At once, not animated: nobody has seen the first view yet, and an
      // animation would cluster and draw every station twice (here at the
      // old zoom, again on its zoomend). Its zoomend is not needed either.
      fitted = fitting = true;
      if (all.length === 1) map.setView(all[0], 7, { animate: false });
      else map.fitBounds(L.latLngBounds(all).pad(0.3), { maxZoom: 8, animate: false });
      fitting = false;
      // After the frame that shows them (a microtask would run before it).
      requestAnimationFrame(() => setTimeout(firstView));
    }
  }
  const groups = cluster(stations.filter((st) => st.location));
  clusterLayer.clearLayers();
  for (const g of groups) if (g.length > 1) drawCluster(g, worst);
  const alone = new Set(groups.filter((g) => g.length === 1).map((g) => g[0].id));
  for (const st of stations) {
    if (!st.location) { missing++; continue; }
    if (!alone.has(st.id)) continue;
    seen.add(st.id);
    const ll = [st.location.lat, st.location.lon];
    const status = statusOf(st, worst);
    // Offline with an alert: grey inside, the alert's colour around.
    const ring = st.state === "offline" && worst.get(st.id) ? fill[worst.get(st.id)] : "#17332b";
    const style = {
      radius: (big ? Math.max(12, Math.round(window.innerWidth / 150)) : 9) + (st.id === selected && !big ? 3 : 0),
      color: st.id === selected && !big ? "#000" : ring, weight: st.id === selected && !big ? 3 : 2,
      fillColor: fill[status], fillOpacity: 0.9,
    };
    let m = markers.get(st.id);
    if (!m) {
      m = L.circleMarker(ll, { ...style, className: "station-marker" }).addTo(layer);
      m.on("click", () => onSelect(st.id));
      m.bindTooltip("", { permanent: true, direction: "right", offset: [big ? Math.max(12, Math.round(window.innerWidth / 150)) : 8, 0], className: "station-label" });
      markers.set(st.id, m);
    } else {
      m.setLatLng(ll).setStyle(style).setRadius(style.radius);
    }
    m.setTooltipContent(el("span", {}, st.id));
    // Name the station and what its colour means on the marker's SVG path,
    // for tools and the browser tests (test/browser).
    const path = m.getElement();
    if (path) {
      path.setAttribute("data-station", st.id);
      path.setAttribute("data-status", status);
      path.setAttribute("data-alert", worst.get(st.id) || "");
    }
    if (st.id === selected) m.bringToFront();
  }
  for (const [id, m] of markers) if (!seen.has(id)) { layer.removeLayer(m); markers.delete(id); }
  return missing;
}

const statusOf = (st, worst) => (st.state === "offline" ? "offline" : worst.get(st.id) || "fine");

// Clustering: stations whose markers would lie closer than clusterPx at the
// current zoom form one group (greedy, in id order, each joining the first
// group whose first station is near). None at the map's last zoom, where
// stations at the same spot must still be reachable one by one.
const clusterPx = 30;
function cluster(stations) {
  const zoom = map.getZoom();
  const groups = [];
  for (const st of [...stations].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const p = map.project([st.location.lat, st.location.lon], zoom);
    const g = zoom < map.getMaxZoom() && groups.find((x) => x.p.distanceTo(p) < clusterPx);
    if (g) g.push(st);
    else groups.push(Object.assign([st], { p }));
  }
  return groups;
}

// The worst of a group: an alert's colour if any fires, then offline, then fine.
const rank = ["red", "orange", "yellow", "blue", "offline", "fine"];
function drawCluster(g, worst) {
  let status = "fine";
  for (const st of g) {
    const s = worst.get(st.id) || statusOf(st, worst);
    if (rank.indexOf(s) < rank.indexOf(status)) status = s;
  }
  const lls = g.map((st) => [st.location.lat, st.location.lon]);
  const size = big ? 44 : 32;
  const m = L.marker(L.latLngBounds(lls).getCenter(), {
    icon: L.divIcon({ className: `station-cluster ${status}`, iconSize: [size, size], html: "" }),
    title: t("map.cluster", { n: g.length, ids: g.map((st) => st.id).join(", ") }),
    keyboard: true,
  }).addTo(clusterLayer);
  // Click: show the whole group, and at least two zoom levels closer (a
  // group spread wider than the view still comes apart in a few clicks).
  m.on("click", () => {
    const b = L.latLngBounds(lls);
    map.setView(b.getCenter(), Math.min(map.getMaxZoom(), Math.max(map.getBoundsZoom(b.pad(0.5)), map.getZoom() + 2)));
  });
  const icon = m.getElement();
  icon.textContent = String(g.length);
  icon.setAttribute("data-stations", g.map((st) => st.id).join(","));
  icon.setAttribute("data-count", String(g.length));
  icon.setAttribute("data-status", status);
}

// The selected station's track: its latitude/longitude series over the
// picked range as bucket means (every=auto), joined on the bucket time, and
// its mooring circle from the newest drift event that names the anchor.
const trackRanges = [["1h", 3600], ["6h", 21600], ["24h", 86400], ["7d", 604800]];
let trackRange = "24h", trackBox = null, trackKey = "", trackAt = 0, trackSeq = 0;

function drawTrackButtons(show) {
  if (!trackBox) return;
  trackBox.hidden = !show;
  trackBox.replaceChildren(el("span", { class: "muted" }, t("map.track")),
    el("div", { class: "segmented", role: "group", "aria-label": t("map.track") }, ...trackRanges.map(([k]) => el("button", {
      type: "button", "data-range": k, "aria-pressed": String(k === trackRange),
      onclick: () => { trackRange = k; trackAt = 0; showTrack(trackStation); },
    }, t(`range.${k}`)))));
}

let trackStation = null;
export function showTrack(st) {
  if (!map || big) return;
  trackStation = st;
  const dev = st && st.devices.find((d) => ["latitude", "longitude"].every((m) => d.latest.some((s) => s.metric === m)));
  const key = dev ? `${st.id}/${dev.id}/${trackRange}` : "";
  if (!dev) {
    if (trackKey) { trackLayer.clearLayers(); trackKey = ""; }
    drawTrackButtons(false);
    return;
  }
  const secs = trackRanges.find((r) => r[0] === trackRange)[1];
  if (key === trackKey && Date.now() - trackAt < Math.max(5000, secs * 5)) { drawMooring(st, dev); return; }
  trackKey = key;
  trackAt = Date.now();
  drawTrackButtons(true);
  const seq = ++trackSeq;
  const to = new Date(), from = new Date(to.getTime() - secs * 1000);
  const q = (metric) => getJSON(`/api/v1/series?${new URLSearchParams({
    station: st.id, device: dev.id, metric, from: from.toISOString(), to: to.toISOString(), every: "auto" })}`);
  Promise.all([q("latitude"), q("longitude")]).then(([la, lo]) => {
    if (seq !== trackSeq) return; // another station or range meanwhile
    const lon = new Map(lo.samples.filter((s) => s.value !== null && s.value !== undefined).map((s) => [s.time, s.value]));
    const pts = la.samples.filter((s) => s.value !== null && s.value !== undefined && lon.has(s.time)).map((s) => [s.value, lon.get(s.time)]);
    trackLayer.clearLayers();
    const line = L.polyline(pts, { color: "#0b4f8a", weight: 3, opacity: 0.8, interactive: false, className: "station-track" }).addTo(trackLayer);
    const path = line.getElement();
    if (path) {
      path.setAttribute("data-station", st.id);
      path.setAttribute("data-device", dev.id);
      path.setAttribute("data-points", String(pts.length));
      path.setAttribute("data-from", from.toISOString());
      path.setAttribute("data-to", to.toISOString());
    }
    drawMooring(st, dev);
  }).catch((e) => console.warn("track:", e.message));
}

let mooring = null;
function drawMooring(st, dev) {
  const ev = (st.events || []).find((e) => e.kind === "drift" && e.device === dev.id && e.values &&
    e.values.anchor_lat !== undefined && e.values.anchor_lon !== undefined && e.values.radius_m > 0);
  if (mooring) { trackLayer.removeLayer(mooring); mooring = null; }
  if (!ev) return;
  const v = ev.values, adrift = ev.attrs && ev.attrs.state === "drifting";
  mooring = L.circle([v.anchor_lat, v.anchor_lon], {
    radius: v.radius_m, color: adrift ? fill.red : fill.fine, weight: 2, dashArray: "6 4", fillOpacity: 0.08,
    interactive: false, className: "mooring-circle",
  }).addTo(trackLayer);
  const path = mooring.getElement();
  if (path) {
    path.setAttribute("data-station", st.id);
    path.setAttribute("data-device", dev.id);
    path.setAttribute("data-radius", String(v.radius_m));
    path.setAttribute("data-anchor", `${v.anchor_lat},${v.anchor_lon}`);
    path.setAttribute("data-state", ev.attrs ? ev.attrs.state || "" : "");
  }
}

export function panTo(stationLoc) {
  if (map && stationLoc) map.panTo([stationLoc.lat, stationLoc.lon]);
}

export function invalidate() {
  if (map) map.invalidateSize();
}
