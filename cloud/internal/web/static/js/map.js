// The station map: Leaflet over the basemap the cloud's configuration names
// (GET /api/v1/console): by default an offline one, Natural Earth's land at
// 1:50m from the vendored world-atlas (coastlines only, no national
// boundaries; docs/decisions.md); or raster tiles, from a configured XYZ
// server or a PMTiles archive the cloud serves (docs/console.md). Each
// station is a circle coloured by its worst firing alert, grey when
// offline. Stations closer than clusterPx at the current zoom are drawn as
// one numbered marker (grid-free greedy clustering, docs/decisions.md §25);
// the selected station's track (latitude/longitude series) and its mooring
// circle (from the gateway's state, else its newest drift event) are drawn
// over them. Tiles in GCJ-02 (Chinese providers) shift every drawn position
// by gcj02.js; the data stay WGS-84.
import { L, topojson } from "./vendor.js";
import { t } from "./i18n.js";
import { el, nameOf } from "./util.js";
import { getJSON } from "./api.js";
import { wgs84ToGcj02 } from "./gcj02.js";

const landURL = "/static/vendor/world-atlas-2.0.2/land-50m.json";

// The basemap as the cloud describes it; the outline until it answers (or
// if it cannot).
const outline = { kind: "outline", min_zoom: 0, max_zoom: 16, coordinates: "wgs84" };
let basemap = null;
// P is where a WGS-84 position is drawn on the basemap: [lat, lon].
const P = (lat, lon) => (basemap && basemap.coordinates === "gcj02" ? wgs84ToGcj02(lat, lon) : [lat, lon]);

// The page's alert colours (style.css), and the two states without one.
const fill = {
  red: "#c0262d", orange: "#e0661b", yellow: "#d4a106", blue: "#1f5fbf",
  fine: "#1f9a7a", offline: "#8a938e",
};

let map, layer, onSelect, big = false;
const markers = new Map(); // station id → circle marker
let fitted = false, fitting = false, firstView = () => {}, viewDrawn = Promise.resolve();
let last = { stations: [], worst: new Map(), selected: null }; // for redraws on zoom
let clusterLayer, trackLayer;

export function initMap(node, opts) {
  onSelect = opts.onSelect;
  big = !!opts.kiosk;
  map = L.map(node, {
    center: [35, 110], zoom: 4, minZoom: 2, maxZoom: outline.max_zoom, worldCopyJump: true,
    preferCanvas: false, zoomSnap: 0.5, attributionControl: true, zoomControl: !big,
  });
  map.attributionControl.setPrefix("Leaflet");
  // The coastline is drawn after the stations' first view has been painted,
  // or 1 s from now if that is sooner (no stations, a slow answer): turning
  // the outline into shapes takes longer than drawing the stations, which
  // are what the page is for, and drawn after the view is fitted it is
  // projected once, not again at the new zoom (docs/decisions.md).
  viewDrawn = new Promise((done) => { firstView = done; setTimeout(done, 1000); });
  getJSON("/api/v1/console").then((c) => c.basemap, (e) => {
    console.warn("basemap: the cloud did not say; the outline it is:", e.message);
    return outline;
  }).then((b) => {
    basemap = b && b.kind ? b : outline;
    node.dataset.basemap = basemap.kind;
    node.dataset.coordinates = basemap.coordinates;
    drawBasemap();
    // What was asked of the map before the cloud answered.
    updateMap(last.stations, last.worst, last.selected);
    if (trackStation) showTrack(trackStation);
  });
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

// drawBasemap adds the basemap under everything else.
function drawBasemap() {
  attribute();
  if (basemap.kind === "outline") {
    const renderer = L.canvas({ padding: 0.5 });
    Promise.all([fetch(landURL).then((r) => r.json()), viewDrawn]).then(([topo]) => {
      const land = topojson.feature(topo, topo.objects.land);
      L.geoJSON(land, {
        renderer, interactive: false,
        style: { color: "#8da39a", weight: 1, fillColor: "#e9ede4", fillOpacity: 1 },
      }).addTo(map).bringToBack();
    }).catch((e) => console.warn("basemap:", e));
    return;
  }
  // Raster tiles, beyond their last zoom scaled up (a province map of
  // zoom 10 tiles still shows a buoy's mooring at 16).
  map.setMaxZoom(Math.max(outline.max_zoom, basemap.max_zoom));
  const opts = {
    minNativeZoom: basemap.min_zoom, maxNativeZoom: basemap.max_zoom, maxZoom: map.getMaxZoom(),
    subdomains: basemap.subdomains && basemap.subdomains.length ? basemap.subdomains : "abc",
    className: "basemap-tiles",
  };
  if (basemap.bounds) opts.bounds = L.latLngBounds([basemap.bounds[0], basemap.bounds[1]], [basemap.bounds[2], basemap.bounds[3]]);
  new Tiles(basemap.url, opts).addTo(map).bringToBack();
}

// Tiles is Leaflet's tile layer without its data: URL: to stop a tile
// loading (on zoom) or to drop one, Leaflet sets its src to a 1-pixel GIF
// as a data: URI, which the page's img-src does not allow (and should not
// for that). Taking the src away stops the request as well and loads
// nothing.
const Tiles = L.TileLayer.extend({
  _abortLoading() {
    for (const key in this._tiles) {
      const tile = this._tiles[key];
      if (tile.coords.z === this._tileZoom) continue;
      const img = tile.el;
      img.onload = L.Util.falseFn;
      img.onerror = L.Util.falseFn;
      if (!img.complete) {
        img.removeAttribute("src");
        L.DomUtil.remove(img);
        delete this._tiles[key];
        this.fire("tileabort", { tile: img, coords: tile.coords });
      }
    }
  },
  _removeTile(key) {
    const tile = this._tiles[key];
    if (!tile) return;
    tile.el.removeAttribute("src");
    L.GridLayer.prototype._removeTile.call(this, key);
  },
});

// attribute names the basemap's source in the map's corner: the shipped
// outline in the page's language, a tile source as configured (plain text;
// in China its 审图号 with it).
let attribution = null; // what attribute() last added
function attribute() {
  const a = map.attributionControl;
  if (attribution !== null) a.removeAttribution(attribution);
  attribution = !basemap || basemap.kind === "outline" ? t("map.basemap") :
    el("span", { class: "basemap-attribution" }, basemap.attribution || "").outerHTML; // as text, not HTML
  a.addAttribution(attribution);
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
  attribute();
}

// updateMap places every station with a location; worst maps a station id
// to its worst alert colour. Returns how many stations have no location.
export function updateMap(stations, worst, selected) {
  if (!map) return 0;
  last = { stations, worst, selected };
  if (!basemap) return stations.filter((st) => !st.location).length; // drawn once the cloud says on what
  const seen = new Set();
  let missing = 0;
  if (!fitted) {
    const all = stations.filter((st) => st.location).map((st) => P(st.location.lat, st.location.lon));
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
    const ll = P(st.location.lat, st.location.lon);
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
    m.setTooltipContent(el("span", {}, nameOf(st)));
    // Name the station and what its colour means on the marker's SVG path,
    // for tools and the browser tests (test/browser).
    const path = m.getElement();
    if (path) {
      path.setAttribute("data-station", st.id);
      path.setAttribute("data-status", status);
      path.setAttribute("data-alert", worst.get(st.id) || "");
      path.setAttribute("data-drawn", ll.join(","));
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
    const p = map.project(P(st.location.lat, st.location.lon), zoom);
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
  const lls = g.map((st) => P(st.location.lat, st.location.lon));
  const size = big ? 44 : 32;
  const m = L.marker(L.latLngBounds(lls).getCenter(), {
    icon: L.divIcon({ className: `station-cluster ${status}`, iconSize: [size, size], html: "" }),
    title: t("map.cluster", { n: g.length, ids: g.map(nameOf).join(", ") }),
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
// its mooring circle: the anchor and radius its gateway's state gives (the
// device's `mooring`), else the newest drift event that names them (older
// gateways); red while the newest drift event says drifting.
const trackRanges = [["1h", 3600], ["6h", 21600], ["24h", 86400], ["7d", 604800]];
let trackRange = "24h", trackBox = null, trackKey = "", trackAt = 0, trackSeq = 0;
// fitFor is the station whose track and mooring the map fits to once
// drawn: one the user picked (not the first station, selected by default).
let fitFor = null;

function drawTrackButtons(show) {
  if (!trackBox) return;
  trackBox.hidden = !show;
  trackBox.replaceChildren(el("span", { class: "muted" }, t("map.track")),
    el("div", { class: "segmented", role: "group", "aria-label": t("map.track") }, ...trackRanges.map(([k]) => el("button", {
      type: "button", "data-range": k, "aria-pressed": String(k === trackRange),
      onclick: () => { trackRange = k; trackAt = 0; showTrack(trackStation); },
    }, t(`range.${k}`)))));
}

// fitTrack makes the map fit station id's track and mooring circle once
// they are drawn (a picked buoy's 100 m circle is a dot at a province's
// zoom). Stations without a track keep the view.
export function fitTrack(id) {
  fitFor = id;
}

const hasFix = (d) => ["latitude", "longitude"].every((m) => d.latest.some((s) => s.metric === m));

let trackStation = null;
export function showTrack(st) {
  if (!map || big) return;
  trackStation = st;
  if (!basemap) return; // drawn once the cloud says on what
  const dev = st && (st.devices.find((d) => d.mooring && hasFix(d)) || st.devices.find(hasFix) || st.devices.find((d) => d.mooring));
  const key = dev ? `${st.id}/${dev.id}/${trackRange}` : "";
  if (!dev) {
    if (trackKey) { trackLayer.clearLayers(); mooring = null; trackKey = ""; }
    drawTrackButtons(false);
    if (st && fitFor === st.id) fitFor = null;
    return;
  }
  const secs = trackRanges.find((r) => r[0] === trackRange)[1];
  if (key === trackKey && Date.now() - trackAt < Math.max(5000, secs * 5)) { drawMooring(st, dev); fitIfPicked(st); return; }
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
    const pts = la.samples.filter((s) => s.value !== null && s.value !== undefined && lon.has(s.time)).map((s) => P(s.value, lon.get(s.time)));
    trackLayer.clearLayers();
    mooring = null;
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
    fitIfPicked(st);
  }).catch((e) => console.warn("track:", e.message));
}

// fitIfPicked fits the view to what trackLayer holds of st (track and
// mooring circle), once after st was picked: the first time it holds
// something (a pick while the track is still being asked for waits for it).
function fitIfPicked(st) {
  if (fitFor !== st.id) return;
  const b = L.latLngBounds([]);
  trackLayer.eachLayer((l) => { if (l.getBounds) b.extend(l.getBounds()); });
  if (!b.isValid()) return;
  fitFor = null;
  map.fitBounds(b.pad(0.15), { maxZoom: map.getMaxZoom(), animate: false });
}

let mooring = null;
function drawMooring(st, dev) {
  const ev = (st.events || []).find((e) => e.kind === "drift" && e.device === dev.id && e.values);
  const old = ev && ev.values.anchor_lat !== undefined && ev.values.anchor_lon !== undefined && ev.values.radius_m > 0 ?
    { lat: ev.values.anchor_lat, lon: ev.values.anchor_lon, radius_m: ev.values.radius_m } : null;
  const m = dev.mooring || old;
  if (mooring) { trackLayer.removeLayer(mooring); mooring = null; }
  if (!m) return;
  const adrift = !!(ev && ev.attrs && ev.attrs.state === "drifting");
  const centre = P(m.lat, m.lon);
  mooring = L.circle(centre, {
    radius: m.radius_m, color: adrift ? fill.red : fill.fine, weight: 2, dashArray: "6 4", fillOpacity: 0.08,
    interactive: false, className: "mooring-circle",
  }).addTo(trackLayer);
  const path = mooring.getElement();
  if (path) {
    path.setAttribute("data-station", st.id);
    path.setAttribute("data-device", dev.id);
    path.setAttribute("data-radius", String(m.radius_m));
    path.setAttribute("data-anchor", `${m.lat},${m.lon}`);
    path.setAttribute("data-drawn", centre.join(","));
    path.setAttribute("data-source", dev.mooring ? "state" : "event");
    path.setAttribute("data-state", ev && ev.attrs ? ev.attrs.state || "" : "");
  }
}

export function panTo(stationLoc) {
  if (map && stationLoc && basemap) map.panTo(P(stationLoc.lat, stationLoc.lon));
}

export function invalidate() {
  if (map) map.invalidateSize();
}
