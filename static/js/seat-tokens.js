// Seat tokens kept in localStorage, one per room (game-connection.js): every
// tab of the browser, and a tab opened after the last one closed, finds it.
//
// An entry is `digit-game-seat:<CODE>` -> {"token": "...", "at": <ms>}, `at`
// when it was last stored. Entries are never needed for long: a token works
// while its seat is held, and a seat nobody is connected to is given up after
// the rejoin window (60 s by default, GAME_REJOIN_SECONDS). Without cleaning,
// a browser that plays a room a day would pile up one entry a day for good.
// So every room page, as it opens, drops entries older than a day (MAX_AGE_MS,
// far beyond any rejoin window a site would set, so a seat still held is never
// forgotten for being old) and keeps at most the 20 newest (MAX_ENTRIES: one
// browser seated in 20 rooms at once is already unlikely, and the server also
// gives a seat back by the browser's session, so a token dropped early costs
// little). An entry is about 70 bytes: 20 of them, 1.4 kB.

export const KEY_PREFIX = "digit-game-seat:";
export const MAX_AGE_MS = 24 * 60 * 60 * 1000;
export const MAX_ENTRIES = 20;

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled: the server still knows the browser by its session
  }
}

/** The entry stored under `key`: {token, at} (at: null for an entry without a time), or null. */
function readEntry(store, key) {
  const raw = store.getItem(key);
  if (raw === null) return null;
  try {
    const entry = JSON.parse(raw);
    if (entry && typeof entry.token === "string") {
      return {token: entry.token, at: Number.isFinite(entry.at) ? entry.at : null};
    }
  } catch {
    // Not JSON: a bare token, as pages stored them before entries had a time.
  }
  return {token: raw, at: null};
}

/** The token stored for room `code`, or null. */
export function readToken(code) {
  const store = storage();
  if (!store) return null;
  try {
    return readEntry(store, KEY_PREFIX + code)?.token ?? null;
  } catch {
    return null;
  }
}

/** Store room `code`'s token (null: forget it), stamped `now`. */
export function storeToken(code, token, now = Date.now()) {
  const store = storage();
  if (!store) return;
  try {
    if (token) store.setItem(KEY_PREFIX + code, JSON.stringify({token, at: now}));
    else store.removeItem(KEY_PREFIX + code);
  } catch {
    // Full or disabled: the server still knows the browser by its session.
  }
}

/**
 * Drop the entries older than `maxAgeMs` and all but the `maxEntries` newest,
 * except room `keep`'s (the page's own room). An entry without a time (stored
 * by an older page) is stamped `now`, so it goes a day later. Returns the
 * codes of the rooms forgotten.
 */
export function pruneTokens({now = Date.now(), keep = null, maxAgeMs = MAX_AGE_MS,
  maxEntries = MAX_ENTRIES} = {}) {
  const store = storage();
  if (!store) return [];
  try {
    const entries = [];
    for (let i = 0; i < store.length; i += 1) {
      const key = store.key(i);
      if (key?.startsWith(KEY_PREFIX)) entries.push({key, ...readEntry(store, key)});
    }
    for (const entry of entries) {
      if (entry.at === null) {
        entry.at = now;
        store.setItem(entry.key, JSON.stringify({token: entry.token, at: now}));
      }
    }
    // Newest first; the page's own room always stays (stored or about to be)
    // and counts as one of them.
    entries.sort((a, b) => b.at - a.at);
    const ownKey = keep === null ? null : KEY_PREFIX + keep;
    const others = entries.filter((entry) => entry.key !== ownKey);
    const room = Math.max(0, maxEntries - (keep === null ? 0 : 1));
    const dropped = others.filter((entry, index) => index >= room || now - entry.at > maxAgeMs);
    for (const entry of dropped) store.removeItem(entry.key);
    return dropped.map((entry) => entry.key.slice(KEY_PREFIX.length));
  } catch {
    return [];
  }
}
