// The signaling envelope over one WebSocket: requests carry an id and resolve on the matching
// reply; events are handed to onEvent in arrival order (see docs/signaling.md).
export class SignalingConnection {
  constructor(url, meetingId, token) {
    this.url = `${url}?meeting=${encodeURIComponent(meetingId)}&token=${encodeURIComponent(token)}`;
    this.pending = new Map();
    this.counter = 0;
    this.onEvent = () => {};
  }

  open() {
    return new Promise((resolve, reject) => {
      this.socket = new WebSocket(this.url);
      this.socket.addEventListener("open", () => resolve(), { once: true });
      this.socket.addEventListener("error", () => reject(new Error("could not connect")), { once: true });
      this.socket.addEventListener("message", (message) => this.receive(JSON.parse(message.data)));
    });
  }

  request(action, data = {}) {
    const id = `r-${Date.now().toString(36)}-${++this.counter}`;
    this.socket.send(JSON.stringify({ action, id, data }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  receive(message) {
    if (message.type === "event") { this.onEvent(message); return; }
    const waiter = this.pending.get(message.id);
    if (!waiter) return;
    this.pending.delete(message.id);
    if (message.type === "reply") waiter.resolve(message.data);
    else waiter.reject(new Error(message.error ? message.error.message : "request failed"));
  }
}
