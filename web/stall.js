// Noticing that the media node stopped, from the page's own statistics (docs/media-control.md,
// "Losing a node").
//
// A node that dies (killed, stalled, its instance lost) says nothing. Chromium notices only
// when ICE has had no packet for a while (measured in bench/media_recovery.py), which is far
// from the 3 s we want media back in. The subscribe connection carries everyone else's audio
// (50 packets a second, silence included when they are muted) and the node's RTCP, so when
// bytes that were arriving steadily stop for a second, the node has very likely stopped. Very
// likely, not surely: the only other participant may have left or lost their network, so a
// stall is reported to signaling, which asks the node before anyone moves.

const SAMPLE_MS = 200;
// No bytes for this long, after a steady flow, is a stall.
const STALL_MS = 600;
// A steady flow: bytes arrived in this many samples in a row (0.8 s) before the gap, so the
// node's sparse RTCP alone (about one packet a second) never counts as one.
const STEADY_SAMPLES = 4;
// A stall that lasts is reported again every STALL_MS (a node that was only slow at the first
// report may have stopped for good since), this many times at most; past that, ICE's own
// failure (MediaSession.watch) takes over.
const MAX_REPORTS = 8;

export class StallWatch {
  // connection(): the RTCPeerConnection to watch now (it changes when media is rebuilt);
  // onStall(silentMs): called when a steady flow stops for STALL_MS, and again every STALL_MS
  // while it stays stopped (MAX_REPORTS times at most).
  constructor(connection, onStall) {
    this.connection = connection;
    this.onStall = onStall;
    this.watched = null;
    this.bytes = 0;
    this.run = 0; // samples in a row in which bytes arrived
    this.runBeforeGap = 0;
    this.lastArrival = 0;
    this.reports = 0; // in the current gap
    this.sampling = false;
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  async sample() {
    if (this.sampling) return; // a getStats slower than the interval: skip, never pile up
    const pc = this.connection();
    if (!pc || pc.connectionState !== "connected") {
      this.watched = null;
      return;
    }
    this.sampling = true;
    let bytes = 0;
    try {
      const report = await pc.getStats();
      report.forEach((s) => { if (s.type === "transport") bytes += s.bytesReceived || 0; });
    } catch {
      return;
    } finally {
      this.sampling = false;
    }
    const now = performance.now();
    if (pc !== this.watched) {
      this.watched = pc;
      this.bytes = bytes;
      this.run = 0;
      this.runBeforeGap = 0;
      this.lastArrival = now;
      this.reports = 0;
      return;
    }
    if (bytes > this.bytes) {
      this.bytes = bytes;
      this.lastArrival = now;
      this.run += 1;
      this.reports = 0;
      return;
    }
    if (this.run > 0) this.runBeforeGap = this.run;
    this.run = 0;
    const silentMs = now - this.lastArrival;
    const due = STALL_MS * (this.reports + 1);
    if (this.runBeforeGap >= STEADY_SAMPLES && silentMs >= due && this.reports < MAX_REPORTS) {
      this.reports += 1;
      this.onStall(silentMs);
    }
  }

  stop() {
    clearInterval(this.timer);
  }
}
