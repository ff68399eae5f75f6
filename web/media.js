// Media with the SFU: one publish connection (microphone, camera) and one subscribe connection
// with the node's fixed slots, both negotiated through signaling (media_publish,
// media_subscribe, media_answer). The node labels published tracks by m-line order:
// audio, then camera (then camera-low, screen); see docs/sfu.md.

const CONFIG = { iceServers: [], bundlePolicy: "max-bundle" };

function gathered(pc) {
  // aiortc has no trickle ICE: send the description once gathering is complete.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
  });
}

export class MediaSession {
  constructor(signaling, stage) {
    this.signaling = signaling;
    this.stage = stage;
    this.tiles = new Map(); // mid -> element
    this.slots = null;
  }

  async start() {
    this.local = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: 640, height: 360 },
    });
    this.publisher = new RTCPeerConnection(CONFIG);
    this.publisher.addTransceiver(this.local.getAudioTracks()[0], { direction: "sendonly" });
    this.publisher.addTransceiver(this.local.getVideoTracks()[0], { direction: "sendonly" });
    await this.publisher.setLocalDescription(await this.publisher.createOffer());
    await gathered(this.publisher);
    const published = await this.signaling.request("media_publish", {
      sdp: this.publisher.localDescription.sdp,
    });
    await this.publisher.setRemoteDescription({ type: "answer", sdp: published.sdp });

    this.subscriber = new RTCPeerConnection(CONFIG);
    this.subscriber.addEventListener("track", (event) => this.attach(event));
    this.subscriber.addEventListener("datachannel", (event) => {
      event.channel.addEventListener("message", (message) => this.onMessage(JSON.parse(message.data)));
    });
    const offer = await this.signaling.request("media_subscribe");
    await this.subscriber.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    await this.subscriber.setLocalDescription(await this.subscriber.createAnswer());
    await gathered(this.subscriber);
    await this.signaling.request("media_answer", { sdp: this.subscriber.localDescription.sdp });
  }

  attach(event) {
    const mid = event.transceiver.mid;
    const element = document.createElement(event.track.kind === "video" ? "video" : "audio");
    element.autoplay = true;
    element.playsInline = true;
    element.dataset.mid = mid;
    element.srcObject = new MediaStream([event.track]);
    if (event.track.kind === "video") {
      element.muted = true; // sound comes from the audio slots
      element.hidden = true; // shown once the slot map says a participant feeds it
      element.setAttribute("aria-label", "participant video");
    }
    this.tiles.set(mid, element);
    this.stage.append(element);
    if (this.slots) this.onMessage(this.slots);
  }

  onMessage(message) {
    if (message.type === "slots") {
      this.slots = message;
      const fed = new Map();
      for (const slot of message.video) if (slot.participant_id) fed.set(slot.mid, slot);
      if (message.screen && message.screen.participant_id) fed.set(message.screen.mid, message.screen);
      for (const [mid, element] of this.tiles) {
        if (element.tagName !== "VIDEO") continue;
        const slot = fed.get(mid);
        element.hidden = !slot;
        element.dataset.participant = slot ? slot.participant_id : "";
      }
    } else if (message.type === "speaker") {
      this.stage.dataset.speaker = message.participant_id || "";
    } else if (message.type === "move") {
      this.stage.dataset.moving = "true"; // the full app renegotiates on another node
    }
  }

  close() {
    for (const pc of [this.publisher, this.subscriber]) if (pc) pc.close();
    if (this.local) for (const track of this.local.getTracks()) track.stop();
  }
}
