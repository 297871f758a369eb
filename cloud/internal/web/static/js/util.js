// Small DOM and formatting helpers shared by the modules.
import { t } from "./i18n.js";

export const $ = (sel) => document.querySelector(sel);

// el builds an element: attributes ("class", "on…" listeners, others as
// attributes) and children (nodes or text). Never a style attribute: the
// page's CSP allows no inline style.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

export function ago(iso) {
  if (!iso) return t("ago.never");
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 90) return t("ago.s", { n: Math.round(s) });
  if (s < 5400) return t("ago.min", { n: Math.round(s / 60) });
  if (s < 129600) return t("ago.h", { n: Math.round(s / 3600) });
  return t("ago.d", { n: Math.round(s / 86400) });
}

// nameOf is what people call a station: its display name (any language,
// from the gateway's config), else its id.
export const nameOf = (st) => st.name || st.id;

// Positions keep 5 decimals (about a metre): a buoy's latitude rounded like
// a temperature would move it by kilometres.
const coordinates = new Set(["latitude", "longitude", "lat", "lon"]);

// fmt shows a value with the precision its size deserves, or a position
// with 5 decimals when metric names one.
export function fmt(v, metric) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (coordinates.has(metric)) return v.toFixed(5);
  const a = Math.abs(v);
  return Number(v.toFixed(a >= 1000 ? 0 : a >= 10 ? 1 : 2)).toString();
}

// tzName names the browser's time zone: "Asia/Shanghai, UTC+08:00".
export function tzName() {
  const off = -new Date().getTimezoneOffset();
  const h = String(Math.floor(Math.abs(off) / 60)).padStart(2, "0");
  const m = String(Math.abs(off) % 60).padStart(2, "0");
  const utc = `UTC${off < 0 ? "-" : "+"}${h}:${m}`;
  let zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch { /* old browser */ }
  return zone && zone !== "UTC" && zone !== "Etc/UTC" ? `${zone}, ${utc}` : utc;
}
