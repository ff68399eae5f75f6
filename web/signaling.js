// One WebSocket with the signaling envelope (docs/signaling.md): requests carry an id and
// resolve on the matching reply (or reject with a SignalingError whose .code is the server's
// code); events go to onEvent in arrival order; onClose fires once when the socket ends for
// any reason. Reconnecting is the caller's job (room/session.js), because it needs a new token.
//
// The join token never goes into the URL (URLs land in CloudFront's and the twin's logs): it
// is the second subprotocol offered, after "townhall", which the server selects.
//
// Liveness: a socket can stall (the network gone, the socket not reset) and look open for
// minutes. When nothing has been received for QUIET_MS, or a request has waited that long,
// the connection sends a `ping`; no answer within PONG_MS means stalled: onStall fires once,
// pending requests are rejected (as maybe sent), and the socket is no longer used. A busy
// socket is never pinged, so the cost is one small request per QUIET_MS of silence.

export const SUBPROTOCOL = "townhall";
export const QUIET_MS = 4000;
export const PONG_MS = 3000;
const TICK_MS = 1000;
const REQUEST_TIMEOUT_MS = 15_000;
const OPEN_TIMEOUT_MS = 10_000;

// .code: the server's error code, or one of ours: "offline" (no usable socket), "closed",
// "timeout", "stalled", "protocol". .maybeSent: the frame left this page and may still be
// (or have been) acted on, so the outcome is unknown; retry it with the same id, never as new.
// .fromServer: the server answered with this error (a definite outcome).
export class SignalingError extends Error {
  constructor(code, message, { maybeSent = false, fromServer = false } = {}) {
    super(message);
    this.code = code;
    this.maybeSent = maybeSent;
    this.fromServer = fromServer;
  }
}

let counter = 0;
// Unique per participant for 10 minutes (the server refuses repeats): time plus a counter
// plus randomness, so a reloaded page never reuses an id.
export function requestId() {
  const random = Math.random().toString(36).slice(2, 8);
  return `r-${Date.now().toString(36)}-${random}-${++counter}`;
}

export class SignalingConnection {
  constructor(url, meetingId, token) {
    this.url = `${url}?meeting=${encodeURIComponent(meetingId)}`;
    this.protocols = [SUBPROTOCOL, token];
    this.pending = new Map(); // id -> {resolve, reject, timer, sentAt, action}
    this.onEvent = () => {};
    this.onClose = () => {};
    this.onStall = () => {};
    this.closed = false;
    this.stalled = false;
    this.lastHeard = 0; // when anything last arrived
    this.pingSentAt = 0; // the outstanding ping, 0 when none
    this.verifiedUpTo = 0; // send time of the last answered ping: frames sent before it arrived
    this.heartbeat = null;
  }

  open() {
    return new Promise((resolve, reject) => {
      let socket;
      try {
        socket = new WebSocket(this.url, this.protocols);
      } catch (error) {
        this.closed = true;
        reject(new SignalingError("closed", `could not connect (${error.name})`));
        return;
      }
      this.socket = socket;
      const timer = setTimeout(() => { socket.close(); reject(new SignalingError("timeout", "could not connect")); }, OPEN_TIMEOUT_MS);
      socket.addEventListener("open", () => {
        clearTimeout(timer);
        if (socket.protocol !== SUBPROTOCOL) {
          // Not our server, or one that did not take the token: nothing on it is trustworthy.
          this.close();
          reject(new SignalingError("protocol", "the server did not accept the signaling protocol"));
          return;
        }
        this.lastHeard = Date.now();
        this.startHeartbeat();
        resolve();
      }, { once: true });
      socket.addEventListener("close", (event) => {
        clearTimeout(timer);
        reject(new SignalingError("closed", "could not connect"));
        this.ended(event.code, event.reason);
      }, { once: true });
      socket.addEventListener("message", (message) => {
        this.lastHeard = Date.now();
        let parsed;
        try { parsed = JSON.parse(message.data); } catch { return; }
        this.receive(parsed);
      });
    });
  }

  get isOpen() {
    return !this.closed && !this.stalled && Boolean(this.socket) && this.socket.readyState === WebSocket.OPEN;
  }

  // options: {id, timeoutMs} (a number is taken as timeoutMs). A caller that retries passes
  // the same id again, so the server's replay check drops the copy.
  request(action, data = {}, options = {}) {
    const { id = requestId(), timeoutMs = REQUEST_TIMEOUT_MS } = typeof options === "number" ? { timeoutMs: options } : options;
    if (!this.isOpen) return Promise.reject(new SignalingError("offline", "not connected"));
    if (this.pending.has(id)) return Promise.reject(new SignalingError("duplicate_request", "already waiting for this request", { maybeSent: true }));
    return new Promise((resolve, reject) => {
      try {
        this.socket.send(JSON.stringify({ action, id, data }));
      } catch {
        reject(new SignalingError("offline", "not connected"));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SignalingError("timeout", `${action} got no answer`, { maybeSent: true }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, sentAt: Date.now(), action });
    });
  }

  receive(message) {
    if (message.type === "event") { this.onEvent(message); return; }
    const waiter = this.pending.get(message.id);
    if (!waiter) return;
    this.pending.delete(message.id);
    clearTimeout(waiter.timer);
    if (message.type === "reply") waiter.resolve(message.data);
    else {
      const error = message.error || {};
      waiter.reject(new SignalingError(error.code || "error", error.message || "request failed", { fromServer: true }));
    }
  }

  // -- liveness ----------------------------------------------------------------------------

  startHeartbeat() {
    this.lastTick = Date.now();
    this.heartbeat = setInterval(() => this.tick(), TICK_MS);
  }

  tick() {
    const now = Date.now();
    const late = now - this.lastTick > 3 * TICK_MS;
    this.lastTick = now;
    if (!this.isOpen) return;
    if (late) {
      // The page was frozen or its timers throttled: an unanswered ping proves nothing yet.
      // Ask again now instead of judging.
      this.pingSentAt = 0;
      this.probe();
      return;
    }
    if (this.pingSentAt) {
      if (now - this.pingSentAt >= PONG_MS) this.stall();
      return;
    }
    const quiet = now - this.lastHeard >= QUIET_MS;
    let waiting = false;
    for (const waiter of this.pending.values()) {
      if (waiter.action !== "ping" && waiter.sentAt > this.verifiedUpTo && now - waiter.sentAt >= QUIET_MS) { waiting = true; break; }
    }
    if (quiet || waiting) this.probe();
  }

  // Ping now (unless a ping is already out): used when quiet, and when the page has reason
  // to doubt the socket (the network came back, the tab woke up).
  probe() {
    if (!this.isOpen || this.pingSentAt) return;
    const sentAt = Date.now();
    this.pingSentAt = sentAt;
    this.request("ping", {}, { timeoutMs: PONG_MS + 1000 }).then(() => {
      if (this.pingSentAt === sentAt) this.pingSentAt = 0;
      this.verifiedUpTo = Math.max(this.verifiedUpTo, sentAt);
    }, () => {});
  }

  // Declared dead while still open: stop using it, tell the owner once. Requests that were
  // sent may still arrive when the network returns, so they are rejected as maybe sent.
  stall() {
    if (this.stalled || this.closed) return;
    this.stalled = true;
    clearInterval(this.heartbeat);
    for (const [, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(new SignalingError("stalled", "the connection stalled", { maybeSent: true }));
    }
    this.pending.clear();
    this.onStall();
  }

  ended(code, reason) {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const [, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(new SignalingError("offline", "the connection closed", { maybeSent: true }));
    }
    this.pending.clear();
    this.onClose({ code, reason });
  }

  close() {
    // Ours, on purpose: no onClose, so nobody reconnects.
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const [, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(new SignalingError("offline", "the connection was closed", { maybeSent: true }));
    }
    this.pending.clear();
    if (this.socket) {
      try { this.socket.close(1000); } catch { /* already closing */ }
    }
  }
}
