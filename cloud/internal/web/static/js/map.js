// The station map: Leaflet over an offline basemap, Natural Earth's land at
// 1:50m from the vendored world-atlas (coastlines only, no national
// boundaries; docs/decisions.md), each station a circle coloured by its
// worst firing alert, grey when offline. No tiles, nothing from elsewhere.
import { L, topojson } from "./vendor.js";
import { t } from "./i18n.js";
import { el } from "./util.js";

const landURL = "/static/vendor/world-atlas-2.0.2/land-50m.json";

// The page's alert colours (style.css), and the two states without one.
const fill = {
  red: "#c0262d", orange: "#e0661b", yellow: "#d4a106", blue: "#1f5fbf",
  fine: "#1f9a7a", offline: "#8a938e",
};

let map, layer, onSelect, big = false;
const markers = new Map(); // station id → circle marker
let fitted = false;

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
  fetch(landURL).then((r) => r.json()).then((topo) => {
    const land = topojson.feature(topo, topo.objects.land);
    L.geoJSON(land, {
      renderer, interactive: false,
      style: { color: "#8da39a", weight: 1, fillColor: "#e9ede4", fillOpacity: 1 },
    }).addTo(map).bringToBack();
  }).catch((e) => console.warn("basemap:", e));
  layer = L.layerGroup().addTo(map);
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
  map.attributionControl.remove();
  map.attributionControl = L.control.attribution({ prefix: "Leaflet" }).addAttribution(t("map.basemap")).addTo(map);
}

// updateMap places every station with a location; worst maps a station id
// to its worst alert colour. Returns how many stations have no location.
export function updateMap(stations, worst, selected) {
  if (!map) return 0;
  const seen = new Set();
  let missing = 0;
  const pts = [];
  for (const st of stations) {
    if (!st.location) { missing++; continue; }
    seen.add(st.id);
    const ll = [st.location.lat, st.location.lon];
    pts.push(ll);
    const status = st.state === "offline" ? "offline" : worst.get(st.id) || "fine";
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
  if (!fitted && pts.length) {
    fitted = true;
    if (pts.length === 1) map.setView(pts[0], 7);
    else map.fitBounds(L.latLngBounds(pts).pad(0.3), { maxZoom: 8 });
  }
  return missing;
}

export function panTo(stationLoc) {
  if (map && stationLoc) map.panTo([stationLoc.lat, stationLoc.lon]);
}

export function invalidate() {
  if (map) map.invalidateSize();
}
