// WGS-84 → GCJ-02: the offset that Chinese map providers (AutoNavi/Gaode,
// Tencent; Baidu adds its own BD-09 on top) draw their tiles in, by the
// published formula (the Krasovsky ellipsoid and the polynomial + sine
// series every open implementation uses). Positions outside the formula's
// rectangle around China (lon 72.004…137.8347, lat 0.8293…55.8271) are not
// shifted, as the providers do not shift them. Used by map.js when the
// configured basemap says `coordinates: gcj02`; tested in the browser
// against published pairs (test/browser, TestGCJ02Conversion).
const a = 6378245.0; // Krasovsky 1940 semi-major axis, m
const ee = 0.00669342162296594323; // its first eccentricity squared

// outOfChina: whether the formula leaves lat, lon as it is.
export function outOfChina(lat, lon) {
  return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
}

function dLatOf(x, y) {
  let r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  r += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
  r += ((20 * Math.sin(y * Math.PI) + 40 * Math.sin((y / 3) * Math.PI)) * 2) / 3;
  r += ((160 * Math.sin((y / 12) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30)) * 2) / 3;
  return r;
}

function dLonOf(x, y) {
  let r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  r += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
  r += ((20 * Math.sin(x * Math.PI) + 40 * Math.sin((x / 3) * Math.PI)) * 2) / 3;
  r += ((150 * Math.sin((x / 12) * Math.PI) + 300 * Math.sin((x / 30) * Math.PI)) * 2) / 3;
  return r;
}

// wgs84ToGcj02 returns [lat, lon] in GCJ-02 for a WGS-84 position.
export function wgs84ToGcj02(lat, lon) {
  if (outOfChina(lat, lon)) return [lat, lon];
  let dLat = dLatOf(lon - 105, lat - 35);
  let dLon = dLonOf(lon - 105, lat - 35);
  const radLat = (lat / 180) * Math.PI;
  const s = Math.sin(radLat);
  const magic = 1 - ee * s * s;
  const sqrtMagic = Math.sqrt(magic);
  dLat = (dLat * 180) / (((a * (1 - ee)) / (magic * sqrtMagic)) * Math.PI);
  dLon = (dLon * 180) / ((a / sqrtMagic) * Math.cos(radLat) * Math.PI);
  return [lat + dLat, lon + dLon];
}
