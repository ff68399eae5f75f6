// The meeting room as a whole: wires the session (signaling), the media, and the parts of the
// page (stage, toolbar, people, chat, reactions, waiting queue, drawer, banner) together.

import { MediaSession } from "/media.js";
import { Banner } from "/room/banner.js";
import { ChatPanel } from "/room/chat.js";
import { Controls } from "/room/controls.js";
import { confirmAction } from "/room/dialog.js";
import { Drawer } from "/room/panels.js";
import { ParticipantsPanel } from "/room/participants.js";
import { QualityMonitor } from "/room/quality.js";
import { Reactions } from "/room/reactions.js";
import { Stage } from "/room/stage.js";
import { WaitingQueue } from "/room/waiting.js";

const $ = (id) => document.getElementById(id);

// The page's polite live region: cleared first so a repeated text is read again.
export function announce(text) {
  const live = $("announcer");
  live.textContent = "";
  setTimeout(() => { live.textContent = text; }, 50);
}

export class RoomView {
  // session: a started MeetingSession; devices: {stream, micOn, cameraOn, videoDeviceId}.
  constructor(session, devices) {
    this.session = session;
    this.devices = devices;
    this.announce = announce;
    this.banner = new Banner($("banner"), announce);
    this.notify = (text) => this.banner.show(text, { kind: "error", for: 6000 });
    this.mediaRepairs = new Set(); // "publish" | "subscribe" while being rebuilt
    this.stage = new Stage($("stage"), $("parking"), session.participantId);
    this.people = new ParticipantsPanel(session, this.notify);
    this.queue = new WaitingQueue(session, this.notify);
    this.chat = new ChatPanel(session, {
      announce: this.announce,
      notify: this.notify,
      onUnread: (count) => this.drawer.setUnread("chat", count),
    });
    this.drawer = new Drawer({ onChange: () => this.chat.setVisible(this.drawer.visible("chat")) });
    this.reactions = new Reactions(session, { announce: this.announce, notify: this.notify });
    this.controls = new Controls({
      mic: () => this.toggleMic(),
      camera: () => this.toggleCamera(),
      share: () => this.toggleShare(),
      hand: () => this.toggleHand(),
    });
    this.media = null;
    this.chains = new Map();
    this.wire();
  }

  // Our own toggles go to the server one at a time per action, in order: a quick "mute" after
  // the join's "unmute" must not overtake it (the last click is what everyone must see).
  serial(action, data) {
    const previous = this.chains.get(action) || Promise.resolve();
    const next = previous.catch(() => {}).then(() => this.session.request(action, data));
    this.chains.set(action, next);
    return next;
  }

  // The facade the collaboration panels get (see web/collab/).
  collabSession() {
    return {
      request: (action, data) => this.session.request(action, data),
      me: () => this.session.me(),
      isModerator: () => this.session.isModerator(),
      announce: (text) => this.announce(text),
    };
  }

  wire() {
    const s = this.session;
    s.on("snapshot", ({ snapshot, rejoin }) => {
      this.drawer.load(snapshot);
      this.render({ quiet: true });
      if (!rejoin) return;
      // Dropping the socket ends a screen share on the server: share again if we still are.
      const me = s.me();
      if (this.media && this.media.screen && me && !me.screen) s.request("screenshare", { on: true }).catch(() => {});
    });
    s.on("event", (event) => this.onEvent(event));
    s.on("connection", ({ state }) => {
      if (state === "reconnecting") this.banner.show("Connection lost. Reconnecting…", { kind: "warning" });
      else this.banner.show("Reconnected.", { kind: "ok", for: 4000 });
      $("room").dataset.connection = state;
    });
    $("layout-button").addEventListener("click", () => {
      const speaker = this.stage.layout !== "speaker";
      this.stage.setLayout(speaker ? "speaker" : "grid");
      $("layout-button").setAttribute("aria-pressed", String(speaker));
    });
    $("leave-button").addEventListener("click", () => this.leave());
    $("mute-all").addEventListener("click", () => this.moderate("mute_all", {}));
    $("lock").addEventListener("click", () => this.moderate("lock", { locked: !(s.meeting && s.meeting.locked) }));
    $("end-all").addEventListener("click", async () => {
      if (await confirmAction("End the meeting for everyone?", "Everyone leaves, and the meeting cannot be rejoined.", "End for all")) {
        this.moderate("end", {});
      }
    });
    this.clock = setInterval(() => this.tick(), 15_000);
  }

  async enter() {
    const s = this.session;
    $("lobby").hidden = true;
    $("waiting").hidden = true;
    $("room").hidden = false;
    document.body.classList.add("in-room");
    $("room-title").textContent = s.meeting ? s.meeting.title : "Meeting";
    document.title = `${$("room-title").textContent} · Townhall`;
    this.tick();
    const me = s.me();
    const mayPublish = !(s.meeting && s.meeting.kind === "webinar" && me && me.role === "attendee");
    const { stream, micOn, cameraOn } = this.devices;
    this.media = new MediaSession({ request: (action, data) => s.request(action, data) }, {
      onTrack: (mid, track) => this.stage.addTrack(mid, track),
      onMessage: (message) => this.onMediaMessage(message),
      onState: ({ kind, state, starting }) => this.onMediaState(kind, state, starting),
    });
    this.selfState = { muted: !(micOn && mayPublish), camera: Boolean(cameraOn && mayPublish) };
    this.controls.set("mic", this.selfState.muted, { disabled: !mayPublish });
    this.controls.set("camera", !this.selfState.camera, { disabled: !mayPublish });
    this.controls.set("share", false, { disabled: !mayPublish || !navigator.mediaDevices.getDisplayMedia });
    this.render({ quiet: true });
    // The collaboration panels load beside the media, not after it.
    const collab = this.drawer.mountCollab(this.collabSession()).then(() => {
      this.drawer.load(s.snapshot);
      for (const event of s.since) this.drawer.handle(event);
    });
    const started = this.media.start(stream, { micOn: !this.selfState.muted, cameraOn: this.selfState.camera, mayPublish });
    this.stage.setSelf(s.participantId, null);
    // Tell everyone our microphone and camera state once our subscribe side is negotiated:
    // the media requests go first (the first remote frame waits on them), and our picture
    // reaches the others about when publishing is done anyway.
    const flags = this.media.subscribed.then(() => Promise.all([
      mayPublish && !this.selfState.muted ? this.serial("mute", { muted: false }) : null,
      mayPublish && this.selfState.camera ? this.serial("camera", { on: true }) : null,
    ])).catch((error) => this.notify(error.message));
    await Promise.all([flags, started.catch((error) => {
      this.banner.show(`Audio and video could not start: ${error.message}`, { kind: "error" });
    })]);
    this.stage.setSelf(s.participantId, this.media.camera);
    this.quality = new QualityMonitor(this.media, this.stage, s.participantId);
    await collab;
  }

  tick() {
    $("room-clock").textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  onEvent(event) {
    try {
      this.react(event);
      this.drawer.handle(event);
    } finally {
      this.render(); // whatever failed above, the stage must show the roster as it now is
    }
  }

  // What an event means for this page beyond the roster: announcements, and our own state.
  react(event) {
    const data = event.data || {};
    const me = this.session.participantId;
    switch (event.event) {
      case "participant.updated":
        // Only what a moderator did to us: our own changes are already applied locally, and
        // their events may arrive in any order with the other fields not yet updated.
        if (data.participant && data.participant.participant_id === me && data.by && data.by !== me) {
          this.applySelf(data.participant, data.by, data.changed || []);
        }
        break;
      case "meeting.muted_all":
        if ((data.participants || []).some((p) => p.participant_id === me)) this.applySelf(this.session.me(), data.by, ["muted"]);
        this.announce("The host muted everyone.");
        break;
      case "reaction":
        this.reactions.show(data);
        break;
      case "waiting.joined":
        this.announce(`${data.participant.name} is waiting to join.`);
        break;
      case "participant.joined":
        if (data.participant.participant_id !== me) this.announce(`${data.participant.name} joined.`);
        break;
      case "participant.left":
        this.announce(`${data.participant ? data.participant.name : "Someone"} left.`);
        break;
      case "meeting.updated":
        if ("locked" in data) this.announce(data.locked ? "The meeting is locked." : "The meeting is unlocked.");
        break;
      default:
        break;
    }
  }

  // A moderator changed our state (mute, camera off, screen share stopped): follow it.
  applySelf(p, by, changed) {
    if (!p || !this.media || !this.selfState) return;
    const byOther = by && by !== this.session.participantId;
    if (changed.includes("muted") && p.muted && !this.selfState.muted) {
      this.selfState.muted = true;
      this.media.setMic(false);
      this.controls.set("mic", true);
      if (byOther) this.announce("A moderator muted your microphone.");
    }
    if (changed.includes("camera") && !p.camera && this.selfState.camera) {
      this.selfState.camera = false;
      this.media.setCamera(false).then(() => this.stage.setSelf(this.session.participantId, null));
      this.controls.set("camera", true);
      if (byOther) this.announce("A moderator stopped your video.");
    }
    if (changed.includes("screen") && !p.screen && this.media.screen) {
      this.media.stopScreen().catch(() => {});
      this.controls.set("share", false);
      if (byOther) this.announce("Your screen share was stopped.");
    }
  }

  // Publish and subscribe are repaired apart (a node crash breaks both): "reconnected" only
  // once neither is still repairing.
  onMediaState(kind, state, starting) {
    if (state === "repairing") {
      this.mediaRepairs.add(kind);
      const text = starting ? "Audio and video did not connect. Trying again…" : "Media connection lost. Reconnecting…";
      this.banner.show(text, { kind: "warning" });
    } else if (state === "repaired") {
      this.mediaRepairs.delete(kind);
      if (this.mediaRepairs.size === 0) this.banner.show("Media reconnected.", { kind: "ok", for: 4000 });
    } else {
      this.mediaRepairs.delete(kind);
      this.banner.show("Could not reconnect audio and video. Leave and join again.", { kind: "error" });
    }
  }

  onMediaMessage(message) {
    if (message.type === "slots") this.stage.setSlots(message);
    else if (message.type === "speaker") this.stage.setSpeaker(message.participant_id);
  }

  render({ quiet = false } = {}) {
    const s = this.session;
    const me = s.me();
    if (!me) return;
    this.stage.setRoster(s.roster.sorted());
    this.people.render();
    this.queue.render();
    this.chat.render({ quiet });
    this.chat.renderRecipients();
    const moderator = s.isModerator();
    $("host-tools").hidden = !moderator;
    $("end-all").hidden = !s.isHost();
    const locked = Boolean(s.meeting && s.meeting.locked);
    $("lock").setAttribute("aria-pressed", String(locked));
    $("lock").textContent = locked ? "Unlock meeting" : "Lock meeting";
    $("lock-state").hidden = !locked;
    this.controls.set("hand", me.hand);
  }

  // -- toolbar actions ---------------------------------------------------------------------

  // Not awaited by the toolbar: pressing M twice quickly toggles twice, and serial() keeps
  // the server's order the same as the clicks.
  toggleMic() {
    const muted = !this.selfState.muted;
    this.selfState.muted = muted;
    this.media.setMic(!muted); // at once: nobody should hear us a round trip after "mute"
    this.controls.set("mic", muted);
    this.serial("mute", { muted }).catch((error) => {
      if (this.selfState.muted !== muted) return; // a later click already changed it
      this.selfState.muted = !muted;
      this.media.setMic(muted);
      this.controls.set("mic", !muted);
      this.notify(`Could not ${muted ? "mute" : "unmute"}: ${error.message}`);
    });
  }

  // The camera follows the click at once (off is a privacy matter: the light goes out now);
  // the server hears about it in click order and a refusal puts it back.
  async toggleCamera() {
    const on = !this.selfState.camera;
    try {
      await this.media.setCamera(on, this.devices.videoDeviceId);
    } catch (error) {
      this.notify(`Could not ${on ? "start" : "stop"} the camera: ${error.message}`);
      return;
    }
    this.selfState.camera = on;
    this.stage.setSelf(this.session.participantId, this.media.camera);
    this.controls.set("camera", !on);
    this.serial("camera", { on }).catch(async (error) => {
      if (this.selfState.camera !== on) return; // a later click already changed it
      this.notify(`Could not ${on ? "start" : "stop"} the camera: ${error.message}`);
      if (on) {
        await this.media.setCamera(false).catch(() => {});
        this.selfState.camera = false;
        this.stage.setSelf(this.session.participantId, null);
        this.controls.set("camera", true);
      }
    });
  }

  async toggleShare() {
    if (this.media.screen) {
      await this.media.stopScreen().catch(() => {});
      this.controls.set("share", false);
      await this.serial("screenshare", { on: false }).catch(() => {});
      return;
    }
    let track;
    try {
      track = await this.media.startScreen();
    } catch (error) {
      if (error.name !== "NotAllowedError") this.notify(`Could not share the screen: ${error.message}`);
      return;
    }
    track.addEventListener("ended", () => { if (this.media.screen === track) this.toggleShare(); });
    try {
      await this.serial("screenshare", { on: true });
      this.controls.set("share", true);
      this.announce("You are sharing your screen.");
    } catch (error) {
      await this.media.stopScreen().catch(() => {});
      this.notify(error.message);
    }
  }

  async toggleHand() {
    const me = this.session.me();
    const raised = !(me && me.hand);
    this.controls.set("hand", raised);
    try {
      await this.serial("hand", { raised });
    } catch (error) {
      this.controls.set("hand", !raised);
      this.notify(`Could not ${raised ? "raise" : "lower"} your hand: ${error.message}`);
    }
  }

  async moderate(action, data) {
    try {
      await this.session.request(action, data);
    } catch (error) {
      this.notify(`Could not ${action.replace("_", " ")}: ${error.message}`);
    }
  }

  async leave() {
    await this.session.leave();
  }

  close() {
    clearInterval(this.clock);
    if (this.quality) this.quality.stop();
    if (this.media) this.media.close();
  }
}
