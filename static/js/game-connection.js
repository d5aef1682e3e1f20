// The game's WebSocket: joining, keeping the seat across reloads, closed tabs,
// second tabs and dropped connections, reconnecting with backoff, and the
// server's clock. Protocol: docs/protocol.md (version 3).
//
// The seat's token is kept in localStorage, one per room: every tab of the
// browser, and a tab opened after the last one closed, finds it and takes
// the same seat back (the server also knows the browser by its session). A
// tab whose seat another tab took is closed with 4011 and stays closed, so
// two tabs never take the seat from each other in turn. Old entries are
// dropped as a room page opens (seat-tokens.js).

import {pruneTokens, readToken, storeToken} from "./seat-tokens.js";

export const PROTOCOL = 3;

// Close codes after which trying again cannot help (docs/protocol.md).
// 1000 is final only after our own `leave`: a server shutting down cleanly
// closes with it too, and then a new connection is exactly what is needed.
const FINAL_CLOSES = {
  4001: "This page is out of date. Reload it to play.",
  4003: "The room is full.",
  4004: "This room does not exist any more.",
  4005: "The host removed you from this room.",
  4010: "Your seat is being played in another window or on another device, so this one was disconnected.",
  4011: "This room is open in another tab.",
};
// Close codes that mean the seat is played elsewhere: the page offers to play here again.
export const REPLACED_CLOSES = [4010, 4011];

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15000;
const PING_EVERY_MS = 10000;
// No message at all for this long means the connection is dead even if the
// browser has not noticed yet (a sleeping laptop, a lost mobile network).
const SILENCE_LIMIT_MS = 25000;

/** Exponential backoff with jitter: half fixed, half random, so clients spread out. */
export function backoffDelay(attempt, base = BACKOFF_BASE_MS, max = BACKOFF_MAX_MS,
  random = Math.random) {
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export class GameConnection {
  /**
   * url: ws(s) URL of the room; code: room code; name: display name;
   * optOut(): current opt-out choice; onMessage(msg); onState({state, detail}).
   */
  constructor({url, code, name, optOut = () => false, onMessage, onState}) {
    this.url = url;
    this.code = code;
    this.name = name;
    this.optOut = optOut;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastHeard = 0;
    this.stopped = false;
    this.leaving = false;
    this.joined = false;
    // Server clock = Date.now() + offset; from the ping with the shortest round trip.
    this.offset = 0;
    this.bestRtt = Infinity;
    this.pingSentAt = null;
    this.state = "idle";

    pruneTokens({keep: code});
    window.addEventListener("online", () => this.retryNow());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.retryNow();
    });
  }

  // Read each time, not cached: another tab may have stored a newer one.
  get token() {
    return readToken(this.code);
  }

  set token(value) {
    storeToken(this.code, value);
  }

  serverNow() {
    return Date.now() + this.offset;
  }

  connect() {
    this.stopped = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this._setState(this.attempt ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      this._scheduleRetry(String(error));
      return;
    }
    this.ws = ws;
    this.joined = false;
    this.pingSentAt = null;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      const join = {type: "join", protocol: PROTOCOL, name: this.name, opt_out: this.optOut()};
      const token = this.token;
      if (token) join.token = token;
      ws.send(JSON.stringify(join));
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!message || typeof message.type !== "string") return;
      this._observeClock(message);
      if (message.type === "welcome") {
        this.joined = true;
        this.attempt = 0;
        if (message.you?.token) this.token = message.you.token;
        this._setState("connected");
        this._startPings();
      }
      if (message.type === "pong") return;
      this.onMessage?.(message);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.joined = false;
      this._stopPings();
      if (this.stopped) return;
      const final = this.leaving ? "You left the room." : FINAL_CLOSES[event.code];
      if (final) {
        this.stopped = true;
        if (this.leaving || event.code === 4004 || event.code === 4005) this.token = null;
        this._setState("closed", {code: event.code, reason: final});
        return;
      }
      this._scheduleRetry(event.reason || "");
    });
  }

  /** Stop for good (no reconnection), e.g. after the server refused to seat us. */
  stop(reason) {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this._stopPings();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
    this._setState("closed", {code: 1000, reason});
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.joined) return false;
    this.ws.send(JSON.stringify({...message, room: this.code}));
    return true;
  }

  leave() {
    // The server closes with 1000 after `leave`; until then nothing reconnects.
    this.token = null;
    this.leaving = true;
    if (!this.send({type: "leave"})) this.close();
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this._stopPings();
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this._setState("closed", {code: 1000, reason: "Disconnected."});
  }

  /** Skip the rest of a backoff wait (the network came back, the tab is visible again). */
  retryNow() {
    if (this.stopped || this.ws || this.retryTimer === null) return;
    this.connect();
  }

  _scheduleRetry(reason) {
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this._setState("waiting", {retryAt: Date.now() + delay, reason});
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  _startPings() {
    this._stopPings();
    this._ping();
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
        // Closing fires the close handler, which schedules the reconnection.
        this.ws?.close(4999, "no answer");
        const ws = this.ws;
        this.ws = null;
        this._stopPings();
        if (ws) this._scheduleRetry("no answer from the server");
        return;
      }
      this._ping();
    }, PING_EVERY_MS);
  }

  _stopPings() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  _ping() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.joined) return;
    this.pingSentAt = Date.now();
    this.ws.send(JSON.stringify({type: "ping"}));
  }

  _observeClock(message) {
    // The welcome's time is its room's: a page that joins mid-round places
    // the round's start (and a restored drawing's times) on the server's clock.
    const serverTime = message.type === "welcome" ? message.room?.server_time : message.server_time;
    if (typeof serverTime !== "number") return;
    const now = Date.now();
    if (message.type === "pong" && this.pingSentAt !== null) {
      const rtt = now - this.pingSentAt;
      this.pingSentAt = null;
      // The answer left the server about half a round trip ago.
      if (rtt <= this.bestRtt * 1.5 || rtt < 50) {
        this.bestRtt = Math.min(this.bestRtt, rtt);
        this.offset = message.server_time + rtt / 2 - now;
      }
    } else if (this.bestRtt === Infinity) {
      this.offset = serverTime - now;
    }
  }

  _setState(state, detail = {}) {
    this.state = state;
    this.onState?.({state, ...detail});
  }
}
