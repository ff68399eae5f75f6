// One WebSocket with the signaling envelope (docs/signaling.md): requests carry an id and
// resolve on the matching reply (or reject with an Error whose .code is the server's code);
// events go to onEvent in arrival order; onClose fires once when the socket ends for any
// reason. Reconnecting is the caller's job (room/session.js), because it needs a new token.

const REQUEST_TIMEOUT_MS = 15_000;
const OPEN_TIMEOUT_MS = 10_000;

export class SignalingError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

let counter = 0;
// Unique per participant for 10 minutes (the server refuses repeats): time plus a counter
// plus randomness, so a reloaded page never reuses an id.
function requestId() {
  const random = Math.random().toString(36).slice(2, 8);
  return `r-${Date.now().toString(36)}-${random}-${++counter}`;
}

export class SignalingConnection {
  constructor(url, meetingId, token) {
    this.url = `${url}?meeting=${encodeURIComponent(meetingId)}&token=${encodeURIComponent(token)}`;
    this.pending = new Map();
    this.onEvent = () => {};
    this.onClose = () => {};
    this.closed = false;
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      this.socket = socket;
      const timer = setTimeout(() => { socket.close(); reject(new SignalingError("timeout", "could not connect")); }, OPEN_TIMEOUT_MS);
      socket.addEventListener("open", () => { clearTimeout(timer); resolve(); }, { once: true });
      socket.addEventListener("close", (event) => {
        clearTimeout(timer);
        reject(new SignalingError("closed", "could not connect"));
        this.ended(event.code, event.reason);
      }, { once: true });
      socket.addEventListener("message", (message) => {
        let parsed;
        try { parsed = JSON.parse(message.data); } catch { return; }
        this.receive(parsed);
      });
    });
  }

  get isOpen() {
    return !this.closed && this.socket && this.socket.readyState === WebSocket.OPEN;
  }

  request(action, data = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
    if (!this.isOpen) return Promise.reject(new SignalingError("offline", "not connected"));
    const id = requestId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SignalingError("timeout", `${action} got no answer`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.send(JSON.stringify({ action, id, data }));
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
      waiter.reject(new SignalingError(error.code || "error", error.message || "request failed"));
    }
  }

  ended(code, reason) {
    if (this.closed) return;
    this.closed = true;
    for (const [, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(new SignalingError("offline", "the connection closed"));
    }
    this.pending.clear();
    this.onClose({ code, reason });
  }

  close() {
    // Ours, on purpose: no onClose, so nobody reconnects.
    this.closed = true;
    for (const [, waiter] of this.pending) clearTimeout(waiter.timer);
    this.pending.clear();
    if (this.socket) this.socket.close(1000);
  }
}
