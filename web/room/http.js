// HTTP calls of the room. Uses the shared client web/api.js when it is there (it attaches the
// signed-in user's bearer, so a host joins as host); plain fetch otherwise.

let shared = null;
const loading = import("/api.js").then((module) => { shared = module; }, () => { shared = {}; });

export class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function plainFetch(path, { method = "GET", body, headers = {} } = {}) {
  const response = await fetch(path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let parsed = {};
  if (response.status !== 204) {
    try { parsed = await response.json(); } catch { parsed = {}; }
  }
  if (!response.ok) {
    const error = parsed.error || {};
    throw new HttpError(response.status, error.code || String(response.status), error.message || response.statusText);
  }
  return parsed;
}

export async function callApi(path, options = {}) {
  await loading;
  if (typeof shared.api !== "function") return plainFetch(path, options);
  try {
    return await shared.api(path, options);
  } catch (error) {
    // Normalise whatever the shared client throws to HttpError (status and code).
    if (error instanceof HttpError) throw error;
    throw new HttpError(error.status || 0, error.code || "error", error.message || "request failed");
  }
}

export async function isSignedIn() {
  await loading;
  return typeof shared.isSignedIn === "function" ? Boolean(shared.isSignedIn()) : false;
}
