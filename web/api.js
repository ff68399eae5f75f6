// The HTTP API client and the signed-in session, shared by every page.
//
// Interface (stable; other modules import these names):
//   api(path, {method = "GET", body, headers, auth = true, raw = false})
//       -> the parsed JSON body (null for 204), or the Response itself when raw is true.
//       `path` is "/api/..." (a path without a leading slash is taken under /api/).
//       A plain-object `body` is sent as JSON; a string, Blob or FormData is sent as is.
//       Any non-2xx answer throws ApiError {status, code, message} from the API's
//       {error: {code, message}} (raw included, so a download never saves an error page).
//       With auth (the default) and a session, it sends Authorization: Bearer <access token>;
//       on a 401 it refreshes the session once and retries the request once.
//   signIn(email, password) -> account      signUp(email, password, name) -> account
//   signOut() -> void (revokes the refresh token server-side, best effort)
//   account() -> Promise<{user_id, email, name} | null> (cached; /api/auth/me when not known)
//   isSignedIn() -> boolean                 onAuthChange(cb) -> unsubscribe function
//   accessToken() -> Promise<string | null> (a fresh access token, refreshing if needed)
//   class ApiError extends Error {status, code, message}
//
// Token storage, and why:
// - The access token (15 min JWT) lives in memory and in sessionStorage: a reload or a new
//   page in the same tab keeps working without a refresh round trip, and it dies with the tab.
// - The refresh token (30 days, rotated on every refresh; the old one still works for 30 s,
//   for a page that navigated away before the new one arrived) lives in
//   localStorage so a person stays signed in across tabs and restarts. The trade-off: script
//   injected into this origin (XSS) could read it. The CSP (script-src 'self', no inline
//   scripts) is what stands between; an HttpOnly cookie would be safer against XSS but the
//   API is bearer-only and CloudFront/API Gateway split origins in AWS, so we accept it.
//   Because refresh tokens rotate, a stolen one that is used makes the owner's next refresh
//   (past those 30 s) fail, which signs them out: theft becomes visible.
// - Refreshes are serialized across tabs with the Web Locks API (when present), re-reading
//   localStorage inside the lock, so two tabs never spend the same refresh token.

const ACCESS_KEY = "townhall.access"; // sessionStorage: {token, refreshAt, expiresAt} (local ms)
const ACCOUNT_KEY = "townhall.account"; // sessionStorage: {user_id, email, name}
const REFRESH_KEY = "townhall.refresh"; // localStorage: the opaque refresh token
const REFRESH_AT = 0.8; // refresh once 80% of the access token's lifetime has passed
const LOCK_NAME = "townhall-refresh";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

// The token's lifetime comes from its own exp - iat, but the moments are kept on this
// browser's clock (from when it arrived): a client clock that is off by minutes must neither
// refresh in a loop nor let the token lapse.
let access = null; // {token, refreshAt, expiresAt} in local epoch milliseconds
let cachedAccount = null;
let refreshing = null; // the in-flight refresh of this tab, shared by concurrent callers
let timer = null;
const listeners = new Set();

function storage(kind) {
  // Storage can throw (disabled cookies, some private modes): behave as if it were empty.
  try { return kind === "local" ? window.localStorage : window.sessionStorage; } catch { return null; }
}

function read(kind, key) {
  try { return storage(kind)?.getItem(key) ?? null; } catch { return null; }
}

function write(kind, key, value) {
  try {
    if (value === null) storage(kind)?.removeItem(key);
    else storage(kind)?.setItem(key, value);
  } catch { /* full or disabled storage: the in-memory copy still works for this page */ }
}

function decodeJwt(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "="));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

function notify() {
  for (const cb of [...listeners]) {
    try { cb(cachedAccount); } catch (error) { console.error(error); }
  }
}

function scheduleRefresh() {
  clearTimeout(timer);
  timer = null;
  if (!access) return;
  timer = setTimeout(() => {
    refresh().catch((error) => {
      // Offline or a server hiccup: try again in 30 s (a 401 has already signed us out).
      if (error.status !== 401 && access) {
        access.refreshAt = Date.now() + 30_000;
        scheduleRefresh();
      }
    });
  }, Math.max(0, access.refreshAt - Date.now()));
}

function setAccess(token, exp) {
  const claims = decodeJwt(token) || {};
  const expires = Number(exp || claims.exp || 0);
  const issued = Number(claims.iat || expires - 900);
  const lifetimeMs = Math.max(60, expires - issued) * 1000;
  const received = Date.now();
  access = { token, refreshAt: received + lifetimeMs * REFRESH_AT, expiresAt: received + lifetimeMs };
  write("session", ACCESS_KEY, JSON.stringify(access));
  scheduleRefresh();
}

function acceptSession(session) {
  // A SessionOut from signup, signin or refresh.
  write("local", REFRESH_KEY, session.refresh_token);
  setAccess(session.access_token, session.access_expires_at);
  const before = cachedAccount;
  cachedAccount = { user_id: session.user_id, email: session.email, name: session.name };
  write("session", ACCOUNT_KEY, JSON.stringify(cachedAccount));
  if (!before || before.user_id !== cachedAccount.user_id || before.name !== cachedAccount.name) {
    notify();
  }
  return cachedAccount;
}

function clearSession({ dropRefreshToken = true } = {}) {
  const wasSignedIn = Boolean(access || cachedAccount || read("local", REFRESH_KEY));
  access = null;
  cachedAccount = null;
  clearTimeout(timer);
  timer = null;
  write("session", ACCESS_KEY, null);
  write("session", ACCOUNT_KEY, null);
  if (dropRefreshToken) write("local", REFRESH_KEY, null);
  if (wasSignedIn) notify();
}

function restore() {
  try {
    const saved = JSON.parse(read("session", ACCESS_KEY) || "null");
    if (saved && typeof saved.token === "string" && Number.isFinite(saved.refreshAt)) access = saved;
    cachedAccount = JSON.parse(read("session", ACCOUNT_KEY) || "null");
  } catch {
    access = null;
    cachedAccount = null;
  }
  if (!read("local", REFRESH_KEY)) {
    // Signed out in another tab (or never signed in): a leftover access token is not a session.
    access = null;
    cachedAccount = null;
    write("session", ACCESS_KEY, null);
    write("session", ACCOUNT_KEY, null);
  }
  if (access) scheduleRefresh();
}

async function send(path, { method, body, headers, token }) {
  const url = /^(https?:)?\//.test(path) ? path : `/api/${path}`;
  const finalHeaders = new Headers(headers || {});
  let payload = body;
  if (body !== undefined && body !== null && !(typeof body === "string" || body instanceof Blob
      || body instanceof FormData || body instanceof URLSearchParams || body instanceof ArrayBuffer)) {
    payload = JSON.stringify(body);
    if (!finalHeaders.has("content-type")) finalHeaders.set("content-type", "application/json");
  }
  if (token) finalHeaders.set("authorization", `Bearer ${token}`);
  if (!finalHeaders.has("accept")) finalHeaders.set("accept", "application/json");
  return fetch(url, { method, headers: finalHeaders, body: payload ?? undefined });
}

async function errorOf(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || `request failed with status ${response.status}`;
  try {
    const parsed = await response.json();
    if (parsed && parsed.error) {
      code = parsed.error.code || code;
      message = parsed.error.message || message;
    } else if (parsed && typeof parsed.detail === "string") {
      message = parsed.detail;
    }
  } catch { /* not JSON: keep the status text */ }
  return new ApiError(response.status, code, message);
}

async function parse(response) {
  if (response.status === 204 || response.status === 205) return null;
  const text = await response.text();
  if (!text) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? JSON.parse(text) : text;
}

async function spendRefreshToken() {
  const token = read("local", REFRESH_KEY);
  if (!token) {
    clearSession({ dropRefreshToken: false });
    throw new ApiError(401, "unauthenticated", "You are signed out.");
  }
  let response;
  try {
    response = await send("/api/auth/refresh", { method: "POST", body: { refresh_token: token } });
  } catch (error) {
    throw new ApiError(0, "network", `Could not reach the server: ${error.message}`);
  }
  if (response.ok) return acceptSession(await response.json());
  const error = await errorOf(response);
  if (response.status === 401) {
    // Spent or revoked: unless another tab rotated it meanwhile, the session is over.
    if (read("local", REFRESH_KEY) === token) clearSession();
  }
  throw error;
}

function refresh() {
  // One refresh per tab at a time; across tabs, one at a time through a Web Lock.
  if (!refreshing) {
    const run = navigator.locks
      ? navigator.locks.request(LOCK_NAME, () => spendRefreshToken())
      : spendRefreshToken();
    refreshing = run.finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function accessToken() {
  if (!read("local", REFRESH_KEY)) return null;
  // Renew a little before expiry, so a request never arrives with a token that just lapsed.
  if (!access || access.expiresAt - Date.now() < 20_000) {
    try { await refresh(); } catch (error) { if (error.status === 401) return null; throw error; }
  }
  return access ? access.token : null;
}

export async function api(path, { method = "GET", body, headers, auth = true, raw = false } = {}) {
  let token = auth ? await accessToken() : null;
  let response;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      response = await send(path, { method, body, headers, token });
    } catch (error) {
      throw new ApiError(0, "network", `Could not reach the server: ${error.message}`);
    }
    if (response.status !== 401 || !token || attempt === 1) break;
    // The token was refused (revoked key, clock skew): refresh once and retry once.
    try { await refresh(); } catch { break; }
    token = access ? access.token : null;
    if (!token) break;
  }
  if (!response.ok) throw await errorOf(response);
  return raw ? response : parse(response);
}

export async function signIn(email, password) {
  const session = await api("/api/auth/signin", {
    method: "POST", body: { email, password }, auth: false,
  });
  return acceptSession(session);
}

export async function signUp(email, password, name) {
  const session = await api("/api/auth/signup", {
    method: "POST", body: { email, password, name }, auth: false,
  });
  return acceptSession(session);
}

export async function signOut() {
  const token = read("local", REFRESH_KEY);
  clearSession();
  if (!token) return;
  try {
    await send("/api/auth/signout", { method: "POST", body: { refresh_token: token } });
  } catch { /* offline: the token expires on its own; it is already gone from this browser */ }
}

export function isSignedIn() {
  return Boolean(read("local", REFRESH_KEY));
}

let loadingAccount = null; // one /me at a time, however many callers ask

export async function account() {
  if (!isSignedIn()) return null;
  if (cachedAccount) return cachedAccount;
  loadingAccount ||= api("/api/auth/me").then((me) => {
    cachedAccount = { user_id: me.user_id, email: me.email, name: me.name };
    write("session", ACCOUNT_KEY, JSON.stringify(cachedAccount));
    notify();
    return cachedAccount;
  }).finally(() => { loadingAccount = null; });
  try {
    return await loadingAccount;
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
}

export function onAuthChange(cb) {
  listeners.add(cb);
  return () => listeners.delete(cb);
}

restore();

// Another tab signed in, rotated, or signed out.
window.addEventListener("storage", (event) => {
  if (event.key !== REFRESH_KEY && event.key !== null) return;
  if (!read("local", REFRESH_KEY)) clearSession({ dropRefreshToken: false });
  else if (!cachedAccount) account().catch(() => {});
});

// Timers are throttled in background tabs: check again when the person comes back.
function checkOnReturn() {
  if (document.visibilityState !== "visible" || !access || !isSignedIn()) return;
  if (Date.now() >= access.refreshAt) refresh().catch(() => {});
}
document.addEventListener("visibilitychange", checkOnReturn);
window.addEventListener("focus", checkOnReturn);
