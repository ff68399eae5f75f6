// Connection quality per tile from RTCPeerConnection.getStats: bitrate, loss and round-trip
// time over the last interval, rated good / fair / poor, with the figures as the label.

const INTERVAL_MS = 2000;

export function rate({ lossPercent, rttMs }) {
  if (lossPercent >= 8 || rttMs >= 400) return "poor";
  if (lossPercent >= 2 || rttMs >= 150) return "fair";
  return "good";
}

function describe(kbps, lossPercent, rttMs) {
  const rate = kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbps` : `${Math.round(kbps)} kbps`;
  const rtt = rttMs === null ? "" : `, ${Math.round(rttMs)} ms`;
  return `${rate}, ${lossPercent.toFixed(1)}% loss${rtt}`;
}

export class QualityMonitor {
  constructor(media, stage, selfId) {
    this.media = media;
    this.stage = stage;
    this.selfId = selfId;
    this.previous = new Map(); // key -> {bytes, packets, lost, time}
    this.timer = setInterval(() => this.sample().catch(() => {}), INTERVAL_MS);
  }

  delta(key, bytes, packets, lost, time) {
    const before = this.previous.get(key);
    this.previous.set(key, { bytes, packets, lost, time });
    if (!before || time <= before.time) return null;
    const seconds = (time - before.time) / 1000;
    const kbps = ((bytes - before.bytes) * 8) / 1000 / seconds;
    const got = packets - before.packets;
    const missed = Math.max(0, lost - before.lost);
    const lossPercent = got + missed > 0 ? (100 * missed) / (got + missed) : 0;
    return { kbps, lossPercent };
  }

  async sample() {
    const stats = await this.media.stats();
    const result = new Map();
    const rttMs = stats.rttSubscribe === null ? null : stats.rttSubscribe * 1000;
    for (const [id, tile] of this.stage.tiles) {
      if (tile.root.classList.contains("camera-off")) continue; // nothing sent, nothing to rate
      const mid = this.stage.midOf(id);
      const s = mid === null ? null : stats.inbound.get(mid);
      if (!s) continue;
      const d = this.delta(`in:${mid}`, s.bytesReceived || 0, s.packetsReceived || 0, s.packetsLost || 0, s.timestamp);
      if (!d) continue;
      const level = d.kbps < 1 ? "poor" : rate({ lossPercent: d.lossPercent, rttMs: rttMs || 0 });
      result.set(id, { level, text: describe(d.kbps, d.lossPercent, rttMs) });
    }
    const out = stats.outbound;
    if (out) {
      const remote = out.remote || {};
      const rtt = remote.roundTripTime !== undefined ? remote.roundTripTime * 1000 : out.rtt === null ? null : out.rtt * 1000;
      const d = this.delta("out", out.bytesSent || 0, out.packetsSent || 0, remote.packetsLost || 0, out.timestamp);
      if (d) result.set(this.selfId, { level: rate({ lossPercent: d.lossPercent, rttMs: rtt || 0 }), text: describe(d.kbps, d.lossPercent, rtt) });
    }
    this.stage.setQuality(result);
  }

  stop() {
    clearInterval(this.timer);
  }
}
