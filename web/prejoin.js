// The pre-join check: camera preview, live microphone level, device pickers and on/off
// toggles, before a person enters a meeting. The join page renders it and, on "Join", hands
// the tracks to the room without asking for the devices again.
//
// Interface (stable):
//   new PreJoinCheck(root)       renders into `root` (an element); nothing is requested yet.
//                                It links /prejoin.css itself when the page has not.
//   await check.start()          asks for camera and microphone; never throws for a denied or
//                                missing device: it says so in the panel and the person can
//                                join without it (stream may then be null or audio/video-only)
//   check.stream                 the current MediaStream (track.enabled follows the toggles), or null
//   check.micOn, check.cameraOn  booleans (a missing device counts as off)
//   check.audioDeviceId, check.videoDeviceId   the chosen devices' ids, or null
//   check.audioOutputId          the chosen speaker (for HTMLMediaElement.setSinkId), or null
//                                when the browser cannot choose one / the system default
//   check.stop({keepTracks = false})  stops the meter and preview and removes listeners;
//                                keepTracks=true leaves the tracks running for the room and
//                                returns the stream (stop() without it stops every track)
//   check.addEventListener("change", ...)  after a toggle, a device switch or a new stream
//   PreJoinCheck.preferences()   {micOn, cameraOn, audioDeviceId, videoDeviceId, audioOutputId} remembered
//                                from the last check in this browser (for the room's defaults)
//
//   new MicLevelMeter(element?)  a role="meter" bar (creates one when no element is given)
//   meter.element; meter.attach(mediaStreamOrTrack); meter.detach(); meter.level (0..1)
//   meter.close()                detaches and closes its AudioContext

const PREFS_KEY = "townhall.media"; // localStorage: the last choices, so a regular is one click away
const SVG_NS = "http://www.w3.org/2000/svg";

const VIDEO_CONSTRAINTS = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

// Minimal line icons (Feather-style paths), drawn with currentColor.
const ICONS = {
  mic: ["M12 2a3 3 0 0 0-3 3v7a3 3 0 0 0 6 0V5a3 3 0 0 0-3-3z", "M19 10v2a7 7 0 0 1-14 0v-2", "M12 19v3"],
  camera: ["M23 7l-7 5 7 5V7z", "M3 5h11a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2z"],
  slash: ["M2 2l20 20"],
};

function icon(name, crossed) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.classList.add("icon");
  for (const d of [...ICONS[name], ...(crossed ? ICONS.slash : [])]) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

let counter = 0;
const uid = (prefix) => `${prefix}-${(counter += 1)}`;

function readPrefs() {
  try { return JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") || {}; } catch { return {}; }
}

function writePrefs(prefs) {
  try { localStorage.setItem(PREFS_KEY, JSON.stringify(prefs)); } catch { /* storage off: fine */ }
}

// -- the level meter --------------------------------------------------------------------------

export class MicLevelMeter {
  constructor(element = null) {
    this.element = element || el("div", { class: "mic-meter" }, el("div", { class: "mic-meter-fill" }));
    this.element.classList.add("mic-meter");
    this.element.setAttribute("role", "meter");
    this.element.setAttribute("aria-valuemin", "0");
    this.element.setAttribute("aria-valuemax", "100");
    this.element.setAttribute("aria-valuenow", "0");
    if (!this.element.hasAttribute("aria-label") && !this.element.hasAttribute("aria-labelledby")) {
      this.element.setAttribute("aria-label", "Microphone level");
    }
    this.fill = this.element.querySelector(".mic-meter-fill")
      || this.element.appendChild(el("div", { class: "mic-meter-fill" }));
    this.level = 0;
    this.context = null;
    this.source = null;
    this.analyser = null;
    this.samples = null;
    this.frame = 0;
    this.shown = -1;
    this.resumeOnGesture = () => { this.context?.resume().catch(() => {}); };
  }

  attach(streamOrTrack) {
    this.detach();
    const track = streamOrTrack instanceof MediaStreamTrack
      ? streamOrTrack : streamOrTrack?.getAudioTracks()[0];
    if (!track || typeof AudioContext === "undefined") return;
    this.context ||= new AudioContext();
    // Autoplay rules may start the context suspended; any gesture on the page resumes it.
    if (this.context.state === "suspended") {
      this.context.resume().catch(() => {});
      for (const type of ["pointerdown", "keydown"]) window.addEventListener(type, this.resumeOnGesture, { once: true });
    }
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 1024;
    this.samples = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser); // an AnalyserNode is pulled without reaching the speakers
    this.track = track;
    const tick = () => {
      this.frame = requestAnimationFrame(tick);
      this.update();
    };
    this.frame = requestAnimationFrame(tick);
  }

  update() {
    if (!this.analyser) return;
    let level = 0;
    if (this.track.enabled && this.track.readyState === "live") {
      this.analyser.getFloatTimeDomainData(this.samples);
      let sum = 0;
      for (const s of this.samples) sum += s * s;
      const rms = Math.sqrt(sum / this.samples.length);
      // -60 dBFS (silence) .. -10 dBFS (loud speech) onto 0..1: how people read a VU meter.
      const db = 20 * Math.log10(rms || 1e-8);
      level = Math.min(1, Math.max(0, (db + 60) / 50));
    }
    // Fast attack, slow release, so short syllables still show.
    this.level = level > this.level ? level : this.level * 0.85 + level * 0.15;
    const percent = Math.round(this.level * 100);
    if (percent !== this.shown) {
      this.shown = percent;
      // Clip rather than scale, so green, amber and red stay where the levels are.
      this.fill.style.clipPath = `inset(0 ${100 - percent}% 0 0)`;
      this.element.setAttribute("aria-valuenow", String(percent));
    }
  }

  detach() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    try { this.source?.disconnect(); } catch { /* already disconnected */ }
    this.source = null;
    this.analyser = null;
    this.track = null;
    this.level = 0;
    this.shown = -1;
    this.fill.style.clipPath = "inset(0 100% 0 0)";
    this.element.setAttribute("aria-valuenow", "0");
  }

  close() {
    this.detach();
    for (const type of ["pointerdown", "keydown"]) window.removeEventListener(type, this.resumeOnGesture);
    this.context?.close().catch(() => {});
    this.context = null;
  }
}

// -- the check --------------------------------------------------------------------------------

function explain(error, what) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return `Townhall isn't allowed to use your ${what}. Allow it from the camera icon in the address bar, then choose “Try again”.`;
    case "NotFoundError":
    case "OverconstrainedError":
      return `No ${what} was found.`;
    case "NotReadableError":
    case "AbortError":
      return `Your ${what} is in use by another app, or the system blocked it.`;
    default:
      return `Your ${what} could not be started${error?.message ? ` (${error.message})` : ""}.`;
  }
}

export class PreJoinCheck extends EventTarget {
  constructor(root) {
    super();
    this.root = root;
    const prefs = readPrefs();
    this.wantMic = prefs.micOn !== false;
    this.wantCamera = prefs.cameraOn !== false;
    this.preferred = { audio: prefs.audioDeviceId || null, video: prefs.videoDeviceId || null };
    this.sinkId = prefs.audioOutputId || null;
    this.audioTrack = null;
    this.videoTrack = null;
    this.mediaStream = null;
    this.stopped = false;
    this.starting = null;
    this.generation = 0; // bumped by each (re)acquisition; a slower, older one gives way
    this.onDeviceChange = () => { this.listDevices().catch(() => {}); };
    this.render();
    this.meter = new MicLevelMeter(this.meterElement);
  }

  static preferences() {
    const prefs = readPrefs();
    return {
      micOn: prefs.micOn !== false,
      cameraOn: prefs.cameraOn !== false,
      audioDeviceId: prefs.audioDeviceId || null,
      videoDeviceId: prefs.videoDeviceId || null,
      audioOutputId: prefs.audioOutputId || null,
    };
  }

  // -- state ------------------------------------------------------------------------------

  get stream() { return this.mediaStream; }
  get micOn() { return Boolean(this.audioTrack && this.wantMic); }
  get cameraOn() { return Boolean(this.videoTrack && this.wantCamera); }
  get audioDeviceId() { return this.audioTrack?.getSettings().deviceId || null; }
  get videoDeviceId() { return this.videoTrack?.getSettings().deviceId || null; }
  get audioOutputId() { return this.sinkId; }

  // -- rendering --------------------------------------------------------------------------

  render() {
    if (!document.querySelector('link[rel="stylesheet"][href="/prejoin.css"]')) {
      document.head.append(el("link", { rel: "stylesheet", href: "/prejoin.css" }));
    }
    const micSelect = uid("prejoin-mic");
    const camSelect = uid("prejoin-camera");
    const meterLabel = uid("prejoin-level");
    const speakerSelect = uid("prejoin-speaker");
    this.video = el("video", { class: "prejoin-video mirror", "aria-label": "Your camera preview" });
    this.video.muted = true;
    this.video.playsInline = true;
    this.video.autoplay = true;
    this.placeholder = el("div", { class: "prejoin-placeholder" },
      el("span", { class: "prejoin-placeholder-text", text: "Camera is off" }));
    this.micButton = el("button", { type: "button", class: "toggle prejoin-toggle", "aria-pressed": "true" },
      el("span", { class: "icon-on" }, icon("mic", false)), el("span", { class: "icon-off" }, icon("mic", true)),
      el("span", { class: "toggle-text", text: "Microphone" }));
    this.cameraButton = el("button", { type: "button", class: "toggle prejoin-toggle", "aria-pressed": "true" },
      el("span", { class: "icon-on" }, icon("camera", false)), el("span", { class: "icon-off" }, icon("camera", true)),
      el("span", { class: "toggle-text", text: "Camera" }));
    this.meterElement = el("div", { class: "mic-meter", "aria-labelledby": meterLabel },
      el("div", { class: "mic-meter-fill" }));
    this.micSelect = el("select", { id: micSelect, disabled: "" });
    this.cameraSelect = el("select", { id: camSelect, disabled: "" });
    this.message = el("p", { class: "prejoin-message", role: "status", "aria-live": "polite" });
    this.retryButton = el("button", { type: "button", class: "secondary small", text: "Try again" });
    this.retryButton.hidden = true;
    this.speakerSelect = el("select", { id: speakerSelect });
    this.speakerField = el("div", { class: "field" },
      el("label", { for: speakerSelect, text: "Speaker" }), this.speakerSelect);
    this.speakerField.hidden = true; // shown when the browser can pick one (setSinkId)
    this.testSoundButton = el("button", { type: "button", class: "secondary small prejoin-test-sound", text: "Play test sound" });

    const panel = el("div", { class: "prejoin-check" }, el("div", { class: "prejoin-layout" },
      el("div", { class: "prejoin-preview" }, this.video, this.placeholder,
        el("div", { class: "prejoin-controls" }, this.micButton, this.cameraButton)),
      el("div", { class: "prejoin-settings stack-sm" },
        el("div", { class: "field" },
          el("span", { id: meterLabel, class: "label", text: "Microphone level" }), this.meterElement,
          el("span", { class: "hint", text: "Say something: the bar should move." })),
        el("div", { class: "field" }, el("label", { for: micSelect, text: "Microphone" }), this.micSelect),
        el("div", { class: "field" }, el("label", { for: camSelect, text: "Camera" }), this.cameraSelect),
        this.speakerField,
        el("div", { class: "row" }, this.testSoundButton),
        el("div", { class: "row" }, this.message, this.retryButton))));
    this.root.replaceChildren(panel);

    this.micButton.addEventListener("click", () => this.setMic(!this.wantMic));
    this.cameraButton.addEventListener("click", () => this.setCamera(!this.wantCamera));
    this.micSelect.addEventListener("change", () => this.switchDevice("audio", this.micSelect.value));
    this.cameraSelect.addEventListener("change", () => this.switchDevice("video", this.cameraSelect.value));
    this.retryButton.addEventListener("click", () => this.start());
    this.testSoundButton.addEventListener("click", () => this.playTestSound());
    this.speakerSelect.addEventListener("change", () => {
      this.sinkId = this.speakerSelect.value || null;
      this.changed();
    });
    this.sync();
  }

  sync() {
    const hasMic = Boolean(this.audioTrack);
    const hasCamera = Boolean(this.videoTrack);
    this.micButton.setAttribute("aria-pressed", String(this.micOn));
    this.cameraButton.setAttribute("aria-pressed", String(this.cameraOn));
    this.micButton.disabled = !hasMic;
    this.cameraButton.disabled = !hasCamera;
    this.micButton.title = hasMic ? (this.micOn ? "Turn microphone off" : "Turn microphone on") : "No microphone";
    this.cameraButton.title = hasCamera ? (this.cameraOn ? "Turn camera off" : "Turn camera on") : "No camera";
    this.placeholder.hidden = this.cameraOn;
    this.placeholder.firstChild.textContent = hasCamera ? "Camera is off" : "No camera";
    this.video.hidden = !this.cameraOn;
    this.meterElement.classList.toggle("is-muted", !this.micOn);
  }

  say(text, { retry = false } = {}) {
    this.message.textContent = text;
    this.message.classList.toggle("is-problem", Boolean(text));
    this.retryButton.hidden = !retry;
  }

  changed() {
    this.sync();
    writePrefs({
      micOn: this.wantMic,
      cameraOn: this.wantCamera,
      audioDeviceId: this.audioDeviceId || this.preferred.audio,
      videoDeviceId: this.videoDeviceId || this.preferred.video,
      audioOutputId: this.sinkId,
    });
    this.dispatchEvent(new Event("change"));
  }

  // -- devices ----------------------------------------------------------------------------

  constraints(kind, deviceId, exact = false) {
    const base = kind === "audio" ? AUDIO_CONSTRAINTS : VIDEO_CONSTRAINTS;
    return deviceId ? { ...base, deviceId: exact ? { exact: deviceId } : { ideal: deviceId } } : { ...base };
  }

  async acquire(kind, deviceId, exact = false) {
    const stream = await navigator.mediaDevices.getUserMedia({ [kind]: this.constraints(kind, deviceId, exact) });
    return kind === "audio" ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
  }

  start() {
    // One acquisition at a time: a second click on "Try again" waits for the first.
    this.starting ||= this.acquireAll().finally(() => { this.starting = null; });
    return this.starting;
  }

  async acquireAll() {
    this.stopped = false;
    this.generation += 1;
    this.say("Checking your camera and microphone… If the browser asks, allow Townhall to use them.");
    if (!navigator.mediaDevices?.getUserMedia) {
      this.say("This browser can't use a camera or microphone on this page (it needs HTTPS). You can still join and listen.");
      this.changed();
      return;
    }
    this.releaseTracks();
    const problems = [];
    try {
      const both = await navigator.mediaDevices.getUserMedia({
        audio: this.constraints("audio", this.preferred.audio),
        video: this.constraints("video", this.preferred.video),
      });
      this.audioTrack = both.getAudioTracks()[0] || null;
      this.videoTrack = both.getVideoTracks()[0] || null;
    } catch (error) {
      // One of the two may still work: try each alone, so a missing camera never costs the mic.
      if (error?.name === "NotAllowedError" || error?.name === "SecurityError") {
        problems.push(explain(error, "camera and microphone"));
      } else {
        for (const kind of ["audio", "video"]) {
          try {
            const track = await this.acquire(kind, this.preferred[kind]);
            if (kind === "audio") this.audioTrack = track; else this.videoTrack = track;
          } catch (single) {
            problems.push(explain(single, kind === "audio" ? "microphone" : "camera"));
          }
        }
      }
    }
    if (this.stopped) { this.releaseTracks(); return; }
    this.rebuildStream();
    await this.listDevices();
    navigator.mediaDevices.addEventListener?.("devicechange", this.onDeviceChange);
    if (problems.length) {
      const denied = problems.some((p) => p.includes("isn't allowed"));
      this.say(`${problems.join(" ")} You can join without ${this.audioTrack || this.videoTrack ? "it" : "them"}.`, { retry: denied || !this.mediaStream });
    } else {
      this.say("");
    }
    this.changed();
  }

  rebuildStream() {
    const tracks = [this.audioTrack, this.videoTrack].filter(Boolean);
    if (this.audioTrack) this.audioTrack.enabled = this.wantMic;
    if (this.videoTrack) this.videoTrack.enabled = this.wantCamera;
    this.mediaStream = tracks.length ? new MediaStream(tracks) : null;
    this.video.srcObject = this.videoTrack ? new MediaStream([this.videoTrack]) : null;
    if (this.videoTrack) this.video.play().catch(() => {});
    if (this.audioTrack) this.meter.attach(this.audioTrack); else this.meter.detach();
    for (const track of tracks) {
      track.addEventListener("ended", () => this.lost(track), { once: true });
    }
  }

  lost(track) {
    // Unplugged, or the system took it back.
    if (this.stopped || (track !== this.audioTrack && track !== this.videoTrack)) return;
    const what = track.kind === "audio" ? "microphone" : "camera";
    if (track === this.audioTrack) this.audioTrack = null; else this.videoTrack = null;
    this.rebuildStream();
    this.say(`Your ${what} stopped. Pick another one, or join without it.`);
    this.listDevices().catch(() => {});
    this.changed();
  }

  async listDevices() {
    if (!navigator.mediaDevices?.enumerateDevices) return;
    const devices = await navigator.mediaDevices.enumerateDevices();
    const fill = (select, kind, track, noun) => {
      // Labels are empty until permission is granted: number them then.
      const found = devices.filter((d) => d.kind === kind && d.deviceId);
      const current = track?.getSettings().deviceId || "";
      const options = found.map((d, i) => {
        const option = el("option", { value: d.deviceId, text: d.label || `${noun} ${i + 1}` });
        if (d.deviceId === current) option.selected = true;
        return option;
      });
      if (!options.length) {
        // Without permission the browser lists devices with empty ids: they exist, but are blocked.
        const blocked = devices.some((d) => d.kind === kind && !d.deviceId);
        options.push(el("option", { value: "", text: blocked ? `${noun} not allowed` : `No ${noun.toLowerCase()} found` }));
      }
      select.replaceChildren(...options);
      if (current) select.value = current;
      select.disabled = !found.length;
      return found;
    };
    const mics = fill(this.micSelect, "audioinput", this.audioTrack, "Microphone");
    const cameras = fill(this.cameraSelect, "videoinput", this.videoTrack, "Camera");
    this.listSpeakers(devices);
    // The chosen device was unplugged: move to the system's default.
    for (const [kind, track, list] of [["audio", this.audioTrack, mics], ["video", this.videoTrack, cameras]]) {
      const current = track?.getSettings().deviceId;
      if (current && list.length && !list.some((d) => d.deviceId === current) && !this.stopped) {
        await this.switchDevice(kind, list[0].deviceId);
      }
    }
  }

  listSpeakers(devices) {
    // Only browsers that can route audio (setSinkId) get a speaker choice.
    const outputs = devices.filter((d) => d.kind === "audiooutput" && d.deviceId);
    const canRoute = typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;
    this.speakerField.hidden = !canRoute || !outputs.length;
    if (this.speakerField.hidden) return;
    if (this.sinkId && !outputs.some((d) => d.deviceId === this.sinkId)) this.sinkId = null;
    this.speakerSelect.replaceChildren(...outputs.map((d, i) =>
      el("option", { value: d.deviceId, text: d.label || `Speaker ${i + 1}` })));
    this.speakerSelect.value = this.sinkId || outputs[0].deviceId;
  }

  async playTestSound() {
    // A short two-note chime made on the spot: nothing to download, and it goes to the
    // chosen speaker where the browser allows it.
    if (typeof AudioContext === "undefined" || this.testSoundButton.getAttribute("aria-disabled") === "true") return;
    this.testSoundButton.setAttribute("aria-disabled", "true");
    this.testSoundButton.textContent = "Playing…";
    const context = new AudioContext();
    try {
      if (this.sinkId && typeof context.setSinkId === "function") await context.setSinkId(this.sinkId);
      await context.resume();
      const gain = context.createGain();
      gain.connect(context.destination);
      const t = context.currentTime;
      for (const [i, frequency] of [660, 880].entries()) {
        const tone = context.createOscillator();
        tone.frequency.value = frequency;
        tone.connect(gain);
        tone.start(t + i * 0.18);
        tone.stop(t + i * 0.18 + 0.16);
      }
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.36);
      await new Promise((resolve) => setTimeout(resolve, 450));
    } catch (error) {
      this.say(`The test sound could not play${error?.message ? ` (${error.message})` : ""}.`);
    } finally {
      context.close().catch(() => {});
      this.testSoundButton.removeAttribute("aria-disabled");
      this.testSoundButton.textContent = "Play test sound";
    }
  }

  async switchDevice(kind, deviceId) {
    if (!deviceId || this.stopped) return;
    const noun = kind === "audio" ? "microphone" : "camera";
    const old = kind === "audio" ? this.audioTrack : this.videoTrack;
    if (old?.getSettings().deviceId === deviceId && old.readyState === "live") return;
    const generation = (this.generation += 1);
    try {
      // Some systems cannot open two cameras at once: release the old one first.
      if (old) old.stop();
      const track = await this.acquire(kind, deviceId, true);
      if (generation !== this.generation || this.stopped) { track.stop(); return; }
      if (kind === "audio") this.audioTrack = track; else this.videoTrack = track;
      this.preferred[kind] = deviceId;
      this.rebuildStream();
      this.say("");
    } catch (error) {
      if (generation !== this.generation) return;
      if (kind === "audio") this.audioTrack = null; else this.videoTrack = null;
      this.rebuildStream();
      this.say(explain(error, noun));
    }
    await this.listDevices();
    this.changed();
  }

  setMic(on) {
    this.wantMic = on;
    if (this.audioTrack) this.audioTrack.enabled = on;
    this.changed();
  }

  setCamera(on) {
    this.wantCamera = on;
    if (this.videoTrack) this.videoTrack.enabled = on;
    this.changed();
  }

  releaseTracks() {
    for (const track of [this.audioTrack, this.videoTrack]) track?.stop();
    this.audioTrack = null;
    this.videoTrack = null;
    this.mediaStream = null;
  }

  stop({ keepTracks = false } = {}) {
    this.stopped = true;
    navigator.mediaDevices?.removeEventListener?.("devicechange", this.onDeviceChange);
    this.meter.close();
    this.video.pause();
    this.video.srcObject = null;
    const stream = this.mediaStream;
    if (!keepTracks) this.releaseTracks();
    return keepTracks ? stream : null;
  }
}

// -- devices asked for later ------------------------------------------------------------------

// A webinar attendee whom the host lets talk: the camera and microphone are asked for only
// then, with the choices remembered from the last check in this browser. Never throws: a
// device that cannot be opened is left out and named in `problems`.
export async function openDevices() {
  const prefs = readPrefs();
  const constraints = (kind) => {
    const base = kind === "audio" ? AUDIO_CONSTRAINTS : VIDEO_CONSTRAINTS;
    const id = kind === "audio" ? prefs.audioDeviceId : prefs.videoDeviceId;
    return id ? { ...base, deviceId: { ideal: id } } : { ...base };
  };
  const tracks = [];
  const problems = [];
  if (navigator.mediaDevices?.getUserMedia) {
    try {
      const both = await navigator.mediaDevices.getUserMedia({ audio: constraints("audio"), video: constraints("video") });
      tracks.push(...both.getTracks());
    } catch (error) {
      if (error?.name === "NotAllowedError" || error?.name === "SecurityError") {
        problems.push(explain(error, "camera and microphone"));
      } else {
        for (const kind of ["audio", "video"]) {
          try {
            const single = await navigator.mediaDevices.getUserMedia({ [kind]: constraints(kind) });
            tracks.push(...single.getTracks());
          } catch (failure) {
            problems.push(explain(failure, kind === "audio" ? "microphone" : "camera"));
          }
        }
      }
    }
  } else {
    problems.push("This browser can't use a camera or microphone on this page (it needs HTTPS).");
  }
  const stream = new MediaStream(tracks);
  return {
    stream,
    micOn: stream.getAudioTracks().length > 0 && prefs.micOn !== false,
    cameraOn: stream.getVideoTracks().length > 0 && prefs.cameraOn !== false,
    problems,
  };
}
