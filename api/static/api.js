// Talking to the ledger's HTTP API: the token, JSON requests, errors, paging.
//
// Paths are relative ("api/status"), so the dashboard also works behind a proxy that
// serves it under a prefix.

const TOKEN_KEY = "deploy-ledger.token";

/**
 * Take a token from the URL fragment (#token=SECRET) into sessionStorage and remove it
 * from the address bar and history. The fragment is never sent to the server.
 */
export function takeTokenFromFragment() {
  const hash = window.location.hash.slice(1);
  // "#token=S" alone, or after a route: "#/host/prod/web-01?token=S" or "…&token=S".
  const at = hash.search(/(^|[?&])token=/);
  if (at < 0) return false;
  const start = hash.indexOf("token=", at);
  const end = hash.indexOf("&", start);
  const token = decodeURIComponent(hash.slice(start + 6, end < 0 ? undefined : end));
  if (token.trim()) setToken(token);
  let rest = hash.slice(0, at) + (end < 0 ? "" : (at > 0 ? hash[at] : "") + hash.slice(end + 1));
  rest = rest.replace(/[?&]$/, "");
  const url = window.location.pathname + window.location.search + (rest ? `#${rest}` : "");
  window.history.replaceState(null, "", url);
  return true;
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The Authorization header, when there is a token (anonymous reads otherwise). */
export function authHeaders() {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** An error answer: the API's JSON {error, message, details} and the HTTP status
 * (0 when the server did not answer at all). */
export class ApiError extends Error {
  constructor(status, body) {
    const message = body && typeof body.message === "string" ? body.message : `HTTP ${status}`;
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.error = body && typeof body.error === "string" ? body.error : "";
    this.details = body && Array.isArray(body.details) ? body.details : [];
  }

  /** "422 unprocessable entity: range: …" */
  describe() {
    if (this.status === 0) return this.message;
    return `${this.status} ${this.error || "error"}: ${this.message}`;
  }
}

/** A URL for an API path with the non-empty parameters. */
export function apiUrl(path, params = {}) {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(key, String(value));
    }
  }
  return url;
}

/** GET an API path; the parsed JSON, or an ApiError. */
export async function getJSON(path, params = {}, { signal } = {}) {
  let response;
  try {
    response = await fetch(apiUrl(path, params), {
      headers: { Accept: "application/json", ...authHeaders() },
      cache: "no-store",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { message: `the server did not answer (${error.message})` });
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/**
 * Every item of a paged list, following each page's `next`. Only the query of `next` is
 * used, so the requests stay on this page's origin and path prefix.
 */
export async function getAllPages(path, params = {}, pageSize = 1000) {
  let page = await getJSON(path, { ...params, limit: pageSize, offset: 0 });
  const items = [...page.items];
  while (page.next && page.items.length > 0) {
    const next = new URL(page.next, document.baseURI);
    page = await getJSON(path, Object.fromEntries(next.searchParams));
    items.push(...page.items);
  }
  return items;
}
