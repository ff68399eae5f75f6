// A minimal stand-in for web/prejoin.js's PreJoinCheck (same interface), used only when that
// module cannot be loaded: a camera preview and microphone and camera switches.

import { el } from "/room/icons.js";

export class BasicPreJoin {
  constructor(root) {
    this.root = root;
    this.stream = null;
    this.micOn = true;
    this.cameraOn = true;
    this.audioDeviceId = null;
    this.videoDeviceId = null;
  }

  async start() {
    this.video = el("video", { class: "preview", autoplay: true, playsinline: true, "aria-label": "Your camera preview" });
    this.video.muted = true;
    this.micButton = el("button", { type: "button", class: "secondary", "aria-pressed": "true", onclick: () => this.toggle("mic") }, "Microphone");
    this.cameraButton = el("button", { type: "button", class: "secondary", "aria-pressed": "true", onclick: () => this.toggle("camera") }, "Camera");
    this.message = el("p", { class: "muted", role: "status" });
    this.root.replaceChildren(this.video, el("div", { class: "row" }, this.micButton, this.cameraButton), this.message);
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: { ideal: 1280 }, height: { ideal: 720 } } });
    } catch {
      try { this.stream = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch { this.stream = new MediaStream(); }
      this.message.textContent = "No camera or microphone could be opened; you can still join.";
    }
    const audio = this.stream.getAudioTracks()[0];
    const video = this.stream.getVideoTracks()[0];
    this.audioDeviceId = audio ? audio.getSettings().deviceId : null;
    this.videoDeviceId = video ? video.getSettings().deviceId : null;
    this.micOn = Boolean(audio);
    this.cameraOn = Boolean(video);
    this.video.srcObject = this.stream;
    this.sync();
  }

  toggle(kind) {
    if (kind === "mic") this.micOn = !this.micOn;
    else this.cameraOn = !this.cameraOn;
    for (const track of this.stream.getAudioTracks()) track.enabled = this.micOn;
    for (const track of this.stream.getVideoTracks()) track.enabled = this.cameraOn;
    this.sync();
  }

  sync() {
    this.micButton.setAttribute("aria-pressed", String(this.micOn));
    this.cameraButton.setAttribute("aria-pressed", String(this.cameraOn));
  }

  stop({ keepTracks = false } = {}) {
    if (!keepTracks && this.stream) for (const track of this.stream.getTracks()) track.stop();
    if (this.video) this.video.srcObject = null;
  }
}
