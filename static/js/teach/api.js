// Talking to the teach API (/learn/teach/api/, docs/teaching.md "Teach the
// model"): JSON in and out, the server's own `error` text on a refusal, and
// the cancel that still goes out while the page is being closed.

/** A refusal from the server: its message, HTTP status and, for 429, the wait it asked for. */
export class ApiError extends Error {
  constructor(message, {status = 0, retryAfter = null} = {}) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

// A request unanswered after this long is reported instead of leaving the
// page waiting: the server answers in milliseconds (training never runs in
// the request), so 20 s only passes when it or the network is gone.
const TIMEOUT_MS = 20_000;

/** GET (no body) or POST (`body`) JSON; the decoded answer, or throws ApiError. */
export async function requestJSON(url, {body = undefined, signal = undefined} = {}) {
  const timeout = AbortSignal.timeout ? AbortSignal.timeout(TIMEOUT_MS) : undefined;
  const signals = [signal, timeout].filter(Boolean);
  let response;
  try {
    response = await fetch(url, {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined
        ? {"Accept": "application/json"}
        : {"Content-Type": "application/json", "Accept": "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal: signals.length > 1 && AbortSignal.any ? AbortSignal.any(signals) : signals[0],
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(error?.name === "TimeoutError"
      ? "The server did not answer in time. Check your connection and try again."
      : "Could not reach the server. Check your connection and try again.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON: a proxy's error page, for instance. Reported below.
  }
  if (!response.ok) {
    const retry = Number(data?.retry_after ?? response.headers.get("Retry-After"));
    throw new ApiError(data?.error || `The server answered ${response.status}.`, {
      status: response.status,
      retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null,
    });
  }
  if (data === null) throw new ApiError("The server sent an answer this page cannot read.");
  return data;
}

/**
 * The server's words as a sentence on the page: its messages are phrases
 * ("send from 6 to 60 examples (got 5)"), shown with a capital and a full stop.
 */
export function sentence(text) {
  const words = String(text || "").trim();
  if (!words) return "";
  const capital = words[0].toUpperCase() + words.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/**
 * POST to `url` in a way that survives the page closing (pagehide): a beacon,
 * with no body, so that no content type can make the browser refuse it; a
 * keepalive fetch where beacons are missing or refused.
 */
export function sendWhileLeaving(url) {
  try {
    if (navigator.sendBeacon && navigator.sendBeacon(url)) return;
  } catch {
    // Refused (a full beacon queue): the fetch below.
  }
  fetch(url, {method: "POST", keepalive: true, credentials: "same-origin"}).catch(() => {});
}

/** The API's addresses, read from the page's data-* attributes. */
export function apiUrls(element) {
  const jobs = element.dataset.jobsUrl;
  return {
    jobs,
    predict: element.dataset.predictUrl,
    job: (id) => `${jobs}/${encodeURIComponent(id)}`,
    cancel: (id) => `${jobs}/${encodeURIComponent(id)}/cancel`,
  };
}
