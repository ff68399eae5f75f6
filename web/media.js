// Media with the SFU (docs/sfu.md): one publish connection and one subscribe connection, both
// negotiated once through signaling (media_publish, media_subscribe, media_answer).
//
// The node labels published tracks by m-line order: the microphone, the camera, a scaled-down
// copy of the camera (thumbnails get it), then the screen. Starting or stopping a screen share
// publishes again (a new connection), because the node never renegotiates. Muting keeps the
// m-lines and sends silence; turning the camera off swaps the track for none (the light goes
// off) without renegotiating.

import { StallWatch } from "/stall.js";

// iceCandidatePoolSize: gathering starts when the connection is made, not when its local
// description is set: a subscribe connection gathers while signaling fetches the node's offer
// (measured: gathering under load took up to a second of a recovery, bench/media_recovery.py).
const CONFIG = { iceServers: [], bundlePolicy: "max-bundle", iceCandidatePoolSize: 1 };
const CAMERA_MAX_BITRATE = 800_000;
const LOW_MAX_BITRATE = 200_000;
const SCREEN_MAX_BITRATE = 2_000_000;
const LOW_HEIGHT = 180;
// The full layer is sent at up to 360p: what a grid tile or a laptop's speaker view shows,
// and encoding 720p (what the pre-join check captures) costs a core per page on small
// machines. The capture stays at its size, so the self view is sharp.
const FULL_HEIGHT = 360;
const GATHER_TIMEOUT_MS = 3000;
const ICE_SERVERS_RENEW_S = 600;
const DISCONNECTED_GRACE_MS = 4000;
const REPAIR_BACKOFF_MS = [0, 1000, 2000, 4000, 8000];
const MAX_REPAIRS = 8;
// Signaling error codes that another attempt cannot change (docs/signaling.md). Not "gone":
// a draining node answers it, and the next attempt is placed on another node.
const FINAL_ERRORS = new Set(["bad_request", "invalid_input", "unauthenticated", "forbidden"]);

function gathered(pc) {
  // aiortc has no trickle ICE: send the description once gathering is complete (bounded).
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(finish, GATHER_TIMEOUT_MS);
    function finish() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() { if (pc.iceGatheringState === "complete") finish(); }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class MediaSession {
  // signaling: {request(action, data)}; handlers: onTrack(mid, track), onMessage(message),
  // onState({kind: "publish"|"subscribe", state: "repairing"|"repaired"|"failed", starting, quiet}).
  constructor(signaling, handlers = {}) {
    this.signaling = signaling;
    this.onTrack = handlers.onTrack || (() => {});
    this.onMessage = handlers.onMessage || (() => {});
    this.onState = handlers.onState || (() => {});
    this.publisher = null;
    this.subscriber = null;
    this.mic = null;
    this.camera = null;
    this.cameraLow = null;
    this.screen = null;
    this.micOn = true;
    this.closed = false;
    this.repairs = { publish: 0, subscribe: 0 };
    this.repairing = { publish: false, subscribe: false };
    // The node each side was last negotiated with (the replies name it): a `media.moved`
    // away from another node leaves that side alone.
    this.nodes = { publish: null, subscribe: null };
    this.stallWatch = new StallWatch(() => this.subscriber, () => this.stalled());
  }

  // stream: the pre-join check's MediaStream (it may lack a track when a device is missing).
  async start(stream, { micOn = true, cameraOn = true, mayPublish = true } = {}) {
    this.mic = stream ? stream.getAudioTracks()[0] || null : null;
    this.micOn = micOn;
    if (this.mic) this.mic.enabled = micOn;
    const camera = stream ? stream.getVideoTracks()[0] || null : null;
    if (camera && !cameraOn) camera.stop(); // the light goes off while the camera is off
    this.setCameraTrack(cameraOn ? camera : null);
    this.mayPublish = mayPublish;
    // Publish and subscribe do not depend on each other: run them side by side. Subscribe
    // asks first (publish still builds its offer then), because seeing the others is what
    // a join waits for. `subscribed` resolves when the subscribe side is negotiated.
    const subscribing = this.establish("subscribe");
    this.subscribed = subscribing.then(() => true, () => false);
    await Promise.all([subscribing, mayPublish ? this.establish("publish") : Promise.resolve()]);
  }

  // A webinar attendee allowed to talk: publish from now on, with tracks asked for only now.
  async startPublishing(stream, { micOn = true, cameraOn = true } = {}) {
    this.mic = stream ? stream.getAudioTracks()[0] || null : null;
    this.micOn = micOn;
    if (this.mic) this.mic.enabled = micOn;
    const camera = stream ? stream.getVideoTracks()[0] || null : null;
    if (camera && !cameraOn) camera.stop();
    this.setCameraTrack(cameraOn ? camera : null);
    this.mayPublish = true;
    this.repairs.publish = 0;
    await this.establish("publish");
  }

  // Back to watching: the publish connection closes and every device is released (the
  // camera light goes out). The subscribe side stays.
  stopPublishing() {
    this.mayPublish = false;
    const pc = this.publisher;
    this.publisher = null;
    this.cameraSenders = null;
    if (pc) pc.close();
    for (const track of [this.mic, this.camera, this.cameraLow, this.screen]) if (track) track.stop();
    this.mic = null;
    this.camera = null;
    this.cameraLow = null;
    this.screen = null;
  }

  // Resolves once one side's connection is no longer connected (the node dropped it), or
  // after `timeoutMs`, whichever comes first.
  dropped(kind, timeoutMs) {
    const pc = kind === "publish" ? this.publisher : this.subscriber;
    if (!pc || pc.connectionState !== "connected") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        pc.removeEventListener("connectionstatechange", check);
        resolve();
      }
      function check() { if (pc.connectionState !== "connected") done(); }
      pc.addEventListener("connectionstatechange", check);
    });
  }

  // The first negotiation of one side. If it fails for a reason that may pass (a stalled or
  // crashed node, a lost reply), it goes through repair's retries instead of leaving the page
  // without audio or video; a refusal (not allowed, meeting over) is final.
  async establish(kind) {
    try {
      await this.negotiate(kind);
    } catch (error) {
      if (!FINAL_ERRORS.has(error.code) && (await this.repair(kind, { starting: true }))) return;
      throw error;
    }
  }

  // A new connection for one side, through signaling.
  negotiate(kind) {
    return kind === "publish" ? this.publish() : this.subscribe();
  }

  // The TURN servers to relay through when UDP to the node is blocked, with credentials minted
  // for this participant (the `media` grant's ice_servers): asked for once, and again well
  // before they expire. Without them (no TURN deployed, or the ask failed) the page still
  // negotiates: direct UDP is the usual path.
  async configuration() {
    const now = Date.now() / 1000;
    if (!this.iceServers || now > this.iceServersUntil - ICE_SERVERS_RENEW_S) {
      // Publish and subscribe start together: one ask serves both.
      this.iceServersAsk = this.iceServersAsk || this.askIceServers(now);
      try {
        await this.iceServersAsk;
      } finally {
        this.iceServersAsk = null;
      }
    }
    return { ...CONFIG, iceServers: this.iceServers };
  }

  async askIceServers(now) {
    try {
      const grant = await this.signaling.request("media");
      const servers = grant.ice_servers || [];
      this.iceServers = servers.map(({ urls, username, credential }) => ({ urls, username, credential }));
      this.iceServersUntil = Math.min(now + 3600, ...servers.map((s) => s.expires_at));
    } catch {
      this.iceServers = this.iceServers || [];
      this.iceServersUntil = now + 60;
    }
  }

  setCameraTrack(track) {
    if (this.cameraLow) this.cameraLow.stop();
    this.camera = track;
    this.cameraLow = track ? track.clone() : null;
  }

  get cameraOn() {
    return Boolean(this.camera && this.camera.readyState === "live");
  }

  // -- publish -----------------------------------------------------------------------------

  async publish() {
    const pc = new RTCPeerConnection(await this.configuration());
    pc.addTransceiver(this.mic || "audio", { direction: "sendonly" });
    const camera = pc.addTransceiver(this.camera || "video", {
      direction: "sendonly",
      sendEncodings: [{ maxBitrate: CAMERA_MAX_BITRATE, scaleResolutionDownBy: this.scale(FULL_HEIGHT) }],
    });
    const low = pc.addTransceiver(this.cameraLow || "video", {
      direction: "sendonly",
      sendEncodings: [{ maxBitrate: LOW_MAX_BITRATE, scaleResolutionDownBy: this.scale(LOW_HEIGHT) }],
    });
    if (this.screen) {
      pc.addTransceiver(this.screen, {
        direction: "sendonly",
        sendEncodings: [{ maxBitrate: SCREEN_MAX_BITRATE }],
      });
    }
    this.watch(pc, "publish");
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    let reply;
    try {
      reply = await this.signaling.request("media_publish", { sdp: pc.localDescription.sdp });
    } catch (error) {
      pc.close();
      throw error;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    if (!this.mayPublish || this.closed) { pc.close(); return; } // stopped meanwhile
    performance.mark("townhall:media-published");
    const previous = this.publisher;
    this.publisher = pc;
    this.nodes.publish = reply.node_id || null;
    this.cameraSenders = [camera.sender, low.sender];
    if (previous) previous.close(); // the node already dropped it when the new offer came
  }

  // How much to scale the camera down for a layer of `height` pixels (never up).
  scale(height) {
    const captured = this.camera ? this.camera.getSettings().height || height : height;
    return Math.max(1, captured / height);
  }

  setMic(on) {
    this.micOn = on;
    if (this.mic) this.mic.enabled = on;
  }

  // Camera on: a fresh capture (deviceId from the pre-join check) swapped in without
  // renegotiating. Off: the track stops and the senders send nothing.
  async setCamera(on, deviceId) {
    if (on === this.cameraOn) return this.camera;
    if (on) {
      const video = deviceId ? { deviceId: { exact: deviceId } } : {};
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 }, ...video } });
      this.setCameraTrack(stream.getVideoTracks()[0]);
    } else {
      if (this.camera) this.camera.stop();
      this.setCameraTrack(null);
    }
    if (this.cameraSenders) {
      const [full, low] = this.cameraSenders;
      await full.replaceTrack(this.camera);
      await low.replaceTrack(this.cameraLow);
      if (this.camera) {
        // A new capture may have another size: keep each layer's height.
        for (const [sender, height] of [[full, FULL_HEIGHT], [low, LOW_HEIGHT]]) {
          const parameters = sender.getParameters();
          if (!parameters.encodings || !parameters.encodings[0]) continue;
          parameters.encodings[0].scaleResolutionDownBy = this.scale(height);
          await sender.setParameters(parameters).catch(() => {});
        }
      }
    }
    return this.camera;
  }

  // Screen share: ask the browser for a screen, then publish again with it as the third
  // video m-line. Resolves with the screen track (or throws when the user cancels).
  async startScreen() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    const track = stream.getVideoTracks()[0];
    track.contentHint = "detail";
    this.screen = track;
    try {
      await this.publish();
    } catch (error) {
      track.stop();
      this.screen = null;
      throw error;
    }
    return track;
  }

  async stopScreen() {
    if (!this.screen) return;
    this.screen.stop();
    this.screen = null;
    if (!this.closed) await this.publish();
  }

  // -- subscribe ---------------------------------------------------------------------------

  async subscribe() {
    const pc = new RTCPeerConnection(await this.configuration());
    pc.addEventListener("track", (event) => {
      if (this.subscriber === pc || this.pendingSubscriber === pc) this.onTrack(event.transceiver.mid, event.track);
    });
    pc.addEventListener("datachannel", (event) => {
      // The node closed the channel (its SCTP association ended): this connection is over.
      event.channel.addEventListener("close", () => {
        if (this.subscriber === pc && !this.closed && pc.connectionState !== "closed") this.repair("subscribe");
      });
      event.channel.addEventListener("message", (message) => {
        if (this.subscriber !== pc && this.pendingSubscriber !== pc) return;
        let parsed;
        try { parsed = JSON.parse(message.data); } catch { return; }
        if (parsed.type === "move") this.move();
        this.onMessage(parsed);
      });
    });
    this.pendingSubscriber = pc;
    this.watch(pc, "subscribe");
    let offer;
    try {
      offer = await this.signaling.request("media_subscribe");
      performance.mark("townhall:media-offered-subscribe");
      await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      performance.mark("townhall:media-gathered-subscribe");
      await this.signaling.request("media_answer", { sdp: pc.localDescription.sdp });
      performance.mark("townhall:media-answered-subscribe");
    } catch (error) {
      if (this.pendingSubscriber === pc) this.pendingSubscriber = null;
      pc.close();
      throw error;
    }
    performance.mark("townhall:media-subscribed");
    const previous = this.subscriber;
    this.subscriber = pc;
    this.nodes.subscribe = offer.node_id || null;
    this.pendingSubscriber = null;
    if (previous) previous.close();
  }

  // -- staying connected -------------------------------------------------------------------

  watch(pc, kind) {
    let timer = null;
    pc.addEventListener("connectionstatechange", () => {
      // Marks for bench/media_recovery.py: when each connection came up, and when Chromium
      // itself saw it go (against when the page's own stall watch did).
      if (["connected", "disconnected", "failed"].includes(pc.connectionState)) performance.mark(`townhall:media-${pc.connectionState}-${kind}`);
      const current = kind === "publish" ? this.publisher : this.subscriber;
      if (pc !== current || this.closed) return;
      clearTimeout(timer);
      if (pc.connectionState === "failed") this.repair(kind);
      else if (pc.connectionState === "disconnected") {
        // Often recovers by itself (a brief loss); repair only if it stays down.
        timer = setTimeout(() => { if (pc.connectionState !== "connected") this.repair(kind); }, DISCONNECTED_GRACE_MS);
      } else if (pc.connectionState === "connected") {
        this.repairs[kind] = 0;
      }
    });
  }

  // The node does not renegotiate (no ICE restart), so a failed connection is replaced by a
  // new one through signaling, which also re-places the meeting if the node is gone.
  // True once rebuilt; false when it gave up (or another repair of this side is running).
  // `starting`: the side never connected (its first negotiation failed).
  // `quiet`: an expected rebuild (the node dropped our media on purpose, as when a webinar
  // panelist goes back to watching), not a fault to show.
  async repair(kind, { starting = false, quiet = false } = {}) {
    if (this.repairing[kind] || this.closed) return false;
    if (kind === "publish" && !this.mayPublish) return false;
    this.repairing[kind] = true;
    performance.mark(`townhall:media-repair-${kind}`);
    this.onState({ kind, state: "repairing", starting, quiet });
    const wanted = () => !this.closed && (kind !== "publish" || this.mayPublish);
    try {
      while (wanted() && this.repairs[kind] < MAX_REPAIRS) {
        await sleep(REPAIR_BACKOFF_MS[Math.min(this.repairs[kind], REPAIR_BACKOFF_MS.length - 1)]);
        if (!wanted()) break;
        this.repairs[kind] += 1;
        try {
          await this.negotiate(kind);
          this.onState({ kind, state: "repaired", quiet });
          return true;
        } catch (error) {
          console.warn(`media ${kind} repair failed`, error);
        }
      }
      if (!this.closed && wanted()) this.onState({ kind, state: "failed", quiet });
      else this.onState({ kind, state: "repaired", quiet: true }); // not wanted any more
      return false;
    } finally {
      this.repairing[kind] = false;
    }
  }

  // The node is draining: publish and subscribe again; signaling places us on another node.
  move() {
    if (this.mayPublish) this.repair("publish");
    this.repair("subscribe");
  }

  // The room left `nodeId` (a `media.moved`): rebuild each side still on it. A side already
  // rebuilt elsewhere (this page found the loss first) is left alone.
  moveFrom(nodeId) {
    if (this.mayPublish && this.nodes.publish === nodeId) this.repair("publish");
    if (this.nodes.subscribe === nodeId) this.repair("subscribe");
  }

  // Media from the node stopped (StallWatch): ask signaling whether the node is lost. It
  // checks the node before anyone moves, so a stall with another cause (the only other
  // participant left) rebuilds nothing; a lost node moves the whole room (`media.moved`),
  // and this page at once from the reply.
  async stalled() {
    const nodeId = this.nodes.subscribe;
    if (!nodeId || this.closed || this.repairing.subscribe) return;
    performance.mark("townhall:media-stall");
    let reply;
    try {
      reply = await this.signaling.request("media_stalled", { node_id: nodeId });
    } catch (error) {
      console.warn("media stall not checked", error);
      return;
    }
    if (reply.moved) {
      performance.mark("townhall:media-moving");
      this.moveFrom(nodeId);
    }
  }

  // -- statistics --------------------------------------------------------------------------

  async stats() {
    const result = { inbound: new Map(), outbound: null, rttSubscribe: null };
    if (this.subscriber) {
      const report = await this.subscriber.getStats();
      report.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video" && s.mid !== undefined) result.inbound.set(String(s.mid), s);
        if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) result.rttSubscribe = s.currentRoundTripTime;
      });
    }
    if (this.publisher) {
      const report = await this.publisher.getStats();
      let outbound = null;
      let remote = null;
      let rtt = null;
      report.forEach((s) => {
        if (s.type === "outbound-rtp" && s.kind === "video" && s.mid === this.cameraSenderMid()) outbound = s;
        if (s.type === "remote-inbound-rtp" && s.kind === "video" && !remote) remote = s;
        if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) rtt = s.currentRoundTripTime;
      });
      result.outbound = outbound ? { ...outbound, remote, rtt } : null;
    }
    return result;
  }

  cameraSenderMid() {
    if (!this.publisher) return null;
    const transceiver = this.publisher.getTransceivers().find((t) => t.sender === this.cameraSenders[0]);
    return transceiver ? transceiver.mid : null;
  }

  close() {
    this.closed = true;
    this.stallWatch.stop();
    for (const pc of [this.publisher, this.subscriber, this.pendingSubscriber]) if (pc) pc.close();
    for (const track of [this.mic, this.camera, this.cameraLow, this.screen]) if (track) track.stop();
  }
}
