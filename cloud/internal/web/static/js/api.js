// The JSON API (docs/api.md). The API token, when the cloud asks for one
// (http.tokens_file), is kept in this browser. A read asks for it once per
// page load; an action asks whenever it is refused for want of one.
import { t } from "./i18n.js";

const tokenKey = "fieldwatch-token";
let askedForToken = false;

export function apiToken() {
  return localStorage.getItem(tokenKey);
}

export async function api(method, url, body, action) {
  for (let tries = 0; ; tries++) {
    const headers = { "Content-Type": "application/json" };
    if (apiToken()) headers.Authorization = `Bearer ${apiToken()}`;
    const r = await fetch(url, { method, cache: "no-store", headers, body: body && JSON.stringify(body) });
    const out = await r.json().catch(() => ({}));
    if (r.status === 401 && tries === 0 && (action || !askedForToken)) {
      askedForToken = true;
      const tok = prompt(t("prompt.token", { err: out.error || t("prompt.tokenneeded") }));
      if (tok && tok.trim()) {
        localStorage.setItem(tokenKey, tok.trim());
        // The cloud records the token's name as the author now.
        if (body) for (const k of ["by", "created_by"]) delete body[k];
        continue;
      }
    }
    if (!r.ok) throw new Error(out.error || `${r.status} ${r.statusText}`);
    return out;
  }
}

export const getJSON = (url) => api("GET", url);
export const sendJSON = (method, url, body) => api(method, url, body, true);
