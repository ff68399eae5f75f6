// The meeting room as a whole: wires the session (signaling), the media, and the parts of the
// page (stage, toolbar, people, chat, reactions, waiting queue, drawer, banner) together.
//
// Roles can change during the meeting: a webinar attendee allowed to talk becomes a panelist
// (the page asks for the camera and microphone only then, and publishes), and back (it stops
// publishing and releases them); a host who leaves hands the role on. Someone whose connection
// dropped is shown reconnecting until their reconnect window passes (timed here).

import { MediaSession } from "/media.js";
import { Banner } from "/room/banner.js";
import { Breakouts } from "/room/breakouts.js";
import { ChatPanel } from "/room/chat.js";
import { Controls } from "/room/controls.js";
import { choose, confirmAction } from "/room/dialog.js";
import { el } from "/room/icons.js";
import { Notices } from "/room/notices.js";
import { Drawer } from "/room/panels.js";
import { ParticipantsPanel } from "/room/participants.js";
import { QualityMonitor } from "/room/quality.js";
import { Reactions } from "/room/reactions.js";
import { Stage } from "/room/stage.js";
import { WaitingQueue } from "/room/waiting.js";

const $ = (id) => document.getElementById(id);
const RECONNECT_WINDOW_MS = 120_000; // docs/signaling.md: the longest a drop is shown
// How long a demoted panelist waits for the node to drop its media before building the
// watch-only connection anyway (the node drops it right after the role change).
const DEMOTION_DROP_WAIT_MS = 3000;

// The page's polite live region: cleared first so a repeated text is read again. Texts that
// come together (a role change and a departure from one action) are read together, not the
// last one alone.
let pendingAnnouncements = [];
let announcing = null;
export function announce(text) {
  const live = $("announcer");
  pendingAnnouncements.push(text);
  if (announcing) return;
  live.textContent = "";
  announcing = setTimeout(() => {
    live.textContent = pendingAnnouncements.join(" ");
    pendingAnnouncements = [];
    announcing = null;
  }, 50);
}

function mayPublish(kind, role) {
  return !(kind === "webinar" && role === "attendee");
}

export class RoomView {
  // session: a started MeetingSession; devices: {stream, micOn, cameraOn, videoDeviceId}.
  constructor(session, devices) {
    this.session = session;
    this.devices = devices;
    this.announce = announce;
    this.banner = new Banner($("banner"), announce);
    // Errors of requests still in flight when the room closed (an "end" whose reply raced the
    // meeting's end) belong to a room nobody sees any more: not shown over the end screen.
    this.closed = false;
    this.notify = (text) => { if (!this.closed) this.banner.show(text, { kind: "error", for: 6000 }); };
    this.mediaRepairs = new Set(); // "publish" | "subscribe" while being rebuilt
    // What moderators do, seen as well as heard: a passing notice beside the announcement.
    this.notices = new Notices($("notices"));
    this.tell = (text) => { this.announce(text); if (!this.closed) this.notices.show(text); };
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
    this.breakouts = new Breakouts(this); // breakout rooms: the bar, the notices, the panel
    this.people.rooms = () => (this.breakouts.inUse() ? this.breakouts.rooms() : null);
    this.controls = new Controls({
      mic: () => this.toggleMic(),
      camera: () => this.toggleCamera(),
      share: () => this.toggleShare(),
      hand: () => this.toggleHand(),
    });
    this.media = null;
    this.chains = new Map();
    this.serverOffset = 0; // the server's clock minus ours (ms), for reconnect windows
    this.deadlines = new Map(); // participant_id -> {rev, at}: when a reconnecting one is gone
    this.expiry = null;
    this.role = null; // our role as the page last acted on it
    this.names = new Map(); // participant_id -> name, for saying who went after they have gone
    this.roleChange = Promise.resolve(); // start or stop publishing, one at a time
    // In a webinar an attendee sees neither other attendees' tiles nor their names.
    session.roster.hides = (p) => this.webinar && p.role === "attendee"
      && p.participant_id !== session.participantId && this.myRole() === "attendee";
    this.wire();
  }

  get webinar() {
    return Boolean(this.session.meeting && this.session.meeting.kind === "webinar");
  }

  myRole() {
    const me = this.session.me();
    return me ? me.role : null;
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
      s.roster.prune();
      this.breakouts.load(snapshot, { rejoin });
      this.drawer.load(snapshot);
      this.render({ quiet: true });
      if (!rejoin) return;
      this.syncClock();
      this.followRole(); // a role may have changed while we were away
      // Dropping the socket ends a screen share on the server: share again if we still are.
      const me = s.me();
      if (this.media && this.media.screen && me && !me.screen) s.request("screenshare", { on: true }).catch(() => {});
    });
    s.on("event", (event) => this.onEvent(event));
    s.on("connection", ({ state }) => {
      // The connection's own line: a notice (or the media's state) never takes its place.
      if (state === "reconnecting") this.banner.state("connection", "Connection lost. Reconnecting…", { kind: "warning" });
      else {
        this.banner.state("connection", null);
        this.banner.show("Reconnected.", { kind: "ok", for: 4000 });
      }
      $("room").dataset.connection = state;
    });
    $("layout-button").addEventListener("click", () => {
      const speaker = this.stage.layout !== "speaker";
      this.stage.setLayout(speaker ? "speaker" : "grid");
      this.controls.setLayout(speaker);
    });
    $("leave-button").addEventListener("click", () => this.leave());
    $("mute-all").addEventListener("click", () => this.moderate("mute_all", {}));
    $("lock").addEventListener("click", () => this.moderate("lock", { locked: !(s.meeting && s.meeting.locked) }));
    $("end-all").addEventListener("click", async () => {
      if (await confirmAction("End the meeting for everyone?",
        "Everyone leaves now. The meeting, its link and its schedule stay: you can start it again.", "End for all")) {
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
    $("room").dataset.kind = this.webinar ? "webinar" : "meeting";
    this.tick();
    this.syncClock();
    const me = s.me();
    this.role = me ? me.role : null;
    // Joined to watch (no devices opened) but already allowed to talk (a rejoin): start as a
    // watcher, and the role check at the end asks for the devices, as a promotion does.
    if (this.devices.watch && mayPublish(s.meeting && s.meeting.kind, this.role)) this.role = "attendee";
    const publishing = mayPublish(s.meeting && s.meeting.kind, this.role);
    const { stream, micOn, cameraOn } = this.devices;
    this.media = new MediaSession({ request: (action, data) => s.request(action, data) }, {
      onTrack: (mid, track) => this.stage.addTrack(mid, track),
      onMessage: (message) => this.onMediaMessage(message),
      onState: ({ kind, state, starting, quiet }) => this.onMediaState(kind, state, starting, quiet),
    });
    this.selfState = { muted: !(micOn && publishing), camera: Boolean(cameraOn && publishing) };
    this.setPublishControls(publishing);
    this.breakouts.load(s.snapshot);
    this.render({ quiet: true });
    if (!publishing) this.announce("You are watching. Raise your hand to ask to talk.");
    // The collaboration panels load beside the media, not after it.
    const collab = this.drawer.mountCollab(this.collabSession()).then(() => {
      this.drawer.load(s.snapshot);
      for (const event of s.since) this.drawer.handle(event);
    });
    const started = this.media.start(stream, { micOn: !this.selfState.muted, cameraOn: this.selfState.camera, mayPublish: publishing });
    this.stage.setSelf(s.participantId, null);
    // Tell everyone our microphone and camera state once our subscribe side is negotiated:
    // the media requests go first (the first remote frame waits on them), and our picture
    // reaches the others about when publishing is done anyway.
    const flags = this.media.subscribed.then(() => Promise.all([
      publishing && !this.selfState.muted ? this.serial("mute", { muted: false }) : null,
      publishing && this.selfState.camera ? this.serial("camera", { on: true }) : null,
    ])).catch((error) => this.notify(error.message));
    await Promise.all([flags, started.catch((error) => {
      this.banner.state("media", `Audio and video could not start: ${error.message}`, { kind: "error" });
    })]);
    this.stage.setSelf(s.participantId, this.media.camera);
    this.quality = new QualityMonitor(this.media, this.stage, s.participantId);
    // A role change that came while the media started (an attendee allowed to talk at once).
    this.followRole();
    this.breakouts.start(); // and into our breakout room, if one is open for us
    await collab;
  }

  // A webinar attendee watches: no microphone, camera or screen controls to puzzle over, and
  // the room bar says so.
  setPublishControls(publishing) {
    this.controls.set("mic", this.selfState.muted, { disabled: !publishing });
    this.controls.set("camera", !this.selfState.camera, { disabled: !publishing });
    this.controls.set("share", Boolean(this.media && this.media.screen), { disabled: !publishing || !navigator.mediaDevices.getDisplayMedia });
    for (const id of ["mic-button", "camera-button", "share-button"]) $(id).hidden = !publishing;
    $("watch-state").hidden = publishing;
  }

  // The server's clock against ours, from one ping: reconnect windows are in server time.
  async syncClock() {
    try {
      const sent = Date.now();
      const reply = await this.session.request("ping");
      const received = Date.now();
      if (reply && Number.isFinite(reply.pong)) this.serverOffset = reply.pong - (sent + received) / 2;
    } catch {
      // keep the last estimate: a window is bounded below anyway
    }
  }

  tick() {
    $("room-clock").textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  onEvent(event) {
    try {
      this.react(event);
      this.breakouts.handle(event);
      this.drawer.handle(event);
    } finally {
      this.render(); // whatever failed above, the stage must show the roster as it now is
    }
  }

  // Who did something, for the notices: "Ada", or "The host" when unknown.
  byName(by, fallback = "The host") {
    if (!by) return fallback;
    if (by === this.session.participantId) return "You";
    const p = this.session.roster.get(by);
    return (p && p.name) || this.names.get(by) || fallback;
  }

  // What an event means for this page beyond the roster: announcements, and our own state.
  react(event) {
    const data = event.data || {};
    const me = this.session.participantId;
    switch (event.event) {
      case "participant.updated": {
        const p = data.participant;
        if (!p) break;
        const changed = data.changed || [];
        if (p.participant_id === me) {
          // Only what a moderator did to us: our own changes are already applied locally, and
          // their events may arrive in any order with the other fields not yet updated.
          if (data.by && data.by !== me) this.applySelf(p, data.by, changed);
          if (changed.includes("role")) this.followRole();
          break;
        }
        if (changed.includes("connected")) {
          if (p.connected) this.announce(`${p.name} is back.`);
          else if (p.reconnecting_until > 0) this.announce(`${p.name} lost their connection. Reconnecting…`);
        }
        if (changed.includes("role") && this.session.isModerator() && this.webinar) {
          if (p.role === "panelist") this.announce(`${p.name} can talk now.`);
          else if (p.role === "attendee") this.announce(`${p.name} is watching again.`);
        }
        if (changed.includes("role") && p.role === "host") this.tell(`${p.name} is the host now.`);
        if (changed.includes("hand") && p.hand && this.session.isModerator()) this.announce(`${p.name} raised their hand.`);
        break;
      }
      case "meeting.muted_all":
        // One notice for it ("Ada muted everyone."), not a second one about our microphone.
        if ((data.participants || []).some((p) => p.participant_id === me)) this.applySelf(this.session.me(), data.by, ["muted"], { quiet: true });
        this.tell(data.by === me ? "You muted everyone." : `${this.byName(data.by)} muted everyone.`);
        break;
      case "reaction":
        this.reactions.show(data);
        break;
      case "waiting.joined":
        this.announce(`${data.participant.name} is waiting to join.`);
        if (this.session.isModerator() && !this.closed) this.waitingNotice(data.participant);
        break;
      case "waiting.left":
        this.notices.settle(data.participant_id);
        break;
      case "participant.joined":
        if (data.participant.participant_id !== me) this.announce(`${data.participant.name} joined.`);
        break;
      case "participant.left":
        this.announce(`${data.participant ? data.participant.name : "Someone"} left.`);
        break;
      case "participant.removed":
        if (data.participant_id !== me) this.announce(`${this.names.get(data.participant_id) || "Someone"} was removed.`);
        break;
      case "meeting.updated":
        if ("locked" in data) {
          const who = this.byName(data.by, "");
          const did = data.locked ? "locked" : "unlocked";
          this.tell(who ? `${who} ${did} the meeting.` : `The meeting is ${did}.`);
        }
        break;
      case "media.moved":
        // Someone found the room's media node lost: move each connection still on it now,
        // rather than wait to notice the stall (the finder's may have moved already).
        if (this.media && (data.room_id || "") === ((this.session.me() || {}).room || "")) this.media.moveFrom(data.lost_node);
        break;
      default:
        break;
    }
  }

  // Someone arrived in the waiting room: a notice naming them, with Admit, Deny and View.
  waitingNotice(person) {
    this.notices.waiting(person, {
      admit: () => this.queue.decide("admit", person),
      deny: () => this.queue.decide("deny", person),
      view: () => { this.drawer.show("people"); $("tab-people").focus(); },
    });
  }

  // A moderator changed our state (mute, camera off, screen share stopped): follow it.
  applySelf(p, by, changed, { quiet = false } = {}) {
    if (!p || !this.media || !this.selfState) return;
    const byOther = by && by !== this.session.participantId && !quiet;
    if (changed.includes("muted") && p.muted && !this.selfState.muted) {
      this.selfState.muted = true;
      this.media.setMic(false);
      this.controls.set("mic", true);
      if (byOther) this.tell(`${this.byName(by, "A moderator")} muted your microphone.`);
    }
    if (changed.includes("camera") && !p.camera && this.selfState.camera) {
      this.selfState.camera = false;
      this.media.setCamera(false).then(() => this.stage.setSelf(this.session.participantId, null));
      this.controls.set("camera", true);
      if (byOther) this.tell(`${this.byName(by, "A moderator")} stopped your video.`);
    }
    if (changed.includes("screen") && !p.screen && this.media.screen) {
      this.media.stopScreen().catch(() => {});
      this.controls.set("share", false);
      if (byOther) this.tell(`${this.byName(by, "A moderator")} stopped your screen share.`);
    }
  }

  // Our role changed (or may have): start or stop publishing to match it, one change at a time.
  followRole() {
    this.roleChange = this.roleChange.then(() => this.applyRole()).catch((error) => {
      console.error("role change failed", error);
    });
    return this.roleChange;
  }

  async applyRole() {
    const role = this.myRole();
    if (!role || !this.media || role === this.role) return;
    const kind = this.session.meeting && this.session.meeting.kind;
    const before = this.role;
    this.role = role;
    if (this.session.roster.prune()) this.render();
    if (role === "host" && before !== "host") this.tell("You are the host now.");
    const could = mayPublish(kind, before);
    const can = mayPublish(kind, role);
    if (can && !could) await this.startTalking();
    else if (could && !can) await this.stopTalking();
  }

  // Allowed to talk: ask for the camera and microphone now, publish them, and say so.
  async startTalking() {
    this.announce("The host lets you talk. Turning on your camera and microphone…");
    const { openDevices } = await import("/prejoin.js");
    const { stream, micOn, cameraOn, problems } = await openDevices();
    if (this.role === "attendee" || !this.media || this.media.closed) {
      for (const track of stream.getTracks()) track.stop(); // taken back meanwhile
      return;
    }
    if (problems.length) this.notify(problems.join(" "));
    this.selfState = { muted: !micOn, camera: cameraOn };
    this.setPublishControls(true);
    try {
      await this.media.startPublishing(stream, { micOn, cameraOn });
    } catch (error) {
      this.banner.state("media", `Your audio and video could not start: ${error.message}`, { kind: "error" });
    }
    this.stage.setSelf(this.session.participantId, this.media.camera);
    await Promise.all([
      micOn ? this.serial("mute", { muted: false }) : null,
      cameraOn ? this.serial("camera", { on: true }) : null,
    ].map((p) => p && p.catch((error) => this.notify(error.message))));
    const me = this.session.me();
    if (me && me.hand) this.serial("hand", { raised: false }).catch(() => {}); // asked and answered
    this.announce(`You can talk now. Your microphone is ${micOn ? "on" : "off"} and your camera is ${cameraOn ? "on" : "off"}.`);
  }

  // Back to watching: stop publishing and release the devices; the node dropped our media
  // with the role change, so the watch-only connection is built again (the repair path).
  async stopTalking() {
    const wasSubscribed = Boolean(this.media.subscriber);
    this.media.stopPublishing();
    this.selfState = { muted: true, camera: false };
    this.setPublishControls(false);
    this.stage.setSelf(this.session.participantId, null);
    this.announce("You are watching again. Your camera and microphone are off.");
    if (!wasSubscribed) return;
    await this.media.dropped("subscribe", DEMOTION_DROP_WAIT_MS);
    if (this.media.closed) return;
    this.media.repairs.subscribe = 0;
    await this.media.repair("subscribe", { quiet: true });
  }

  // Publish and subscribe are repaired apart (a node crash breaks both): "reconnected" only
  // once neither is still repairing.
  onMediaState(kind, state, starting, quiet) {
    if (this.closed) return;
    if (state === "repairing") {
      this.mediaRepairs.add(kind);
      if (quiet) return;
      const text = starting ? "Audio and video did not connect. Trying again…" : "Media connection lost. Reconnecting…";
      this.banner.state("media", text, { kind: "warning" });
    } else if (state === "repaired") {
      this.mediaRepairs.delete(kind);
      if (this.mediaRepairs.size > 0) return;
      this.banner.state("media", null);
      if (!quiet) this.banner.show("Media reconnected.", { kind: "ok", for: 4000 });
    } else {
      this.mediaRepairs.delete(kind);
      this.banner.state("media", "Could not reconnect audio and video. Leave and join again.", { kind: "error" });
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
    this.timeReconnects();
    const everyone = s.roster.sorted();
    for (const p of everyone) this.names.set(p.participant_id, p.name);
    // Webinar attendees watch: no tile for them, on anyone's page (their own included).
    // Only the people in our room (breakout rooms) are on the stage.
    this.stage.setRoster(this.breakouts.here(this.webinar ? everyone.filter((p) => p.role !== "attendee") : everyone));
    this.people.render();
    this.queue.render();
    // A waiting notice lasts only while its person waits, and only for a moderator.
    this.notices.keepOnly(new Set(s.isModerator() ? s.roster.waiting.keys() : []));
    this.chat.render({ quiet });
    this.chat.renderRecipients();
    const moderator = s.isModerator();
    $("host-tools").hidden = !moderator;
    $("end-all").hidden = !s.isHost();
    const locked = Boolean(s.meeting && s.meeting.locked);
    $("lock").setAttribute("aria-pressed", String(locked));
    $("lock").textContent = locked ? "Unlock meeting" : "Lock meeting";
    $("lock-state").hidden = !locked;
    this.controls.set("hand", me.hand, { disabled: false });
    this.breakouts.render();
  }

  // Reconnecting participants leave the page when their window passes: the next one is timed.
  timeReconnects() {
    const now = Date.now();
    const seen = new Set();
    for (const p of this.session.roster.reconnecting()) {
      seen.add(p.participant_id);
      const held = this.deadlines.get(p.participant_id);
      if (held && held.rev === p.rev) continue;
      // Their deadline in our clock, never past the window from now (clocks differ).
      const at = Math.min(Math.max(p.reconnecting_until - this.serverOffset, now), now + RECONNECT_WINDOW_MS);
      this.deadlines.set(p.participant_id, { rev: p.rev, at });
    }
    for (const id of this.deadlines.keys()) if (!seen.has(id)) this.deadlines.delete(id);
    clearTimeout(this.expiry);
    if (this.deadlines.size === 0) return;
    const next = Math.min(...[...this.deadlines.values()].map((d) => d.at));
    this.expiry = setTimeout(() => this.expireReconnects(), Math.max(0, next - Date.now()) + 50);
  }

  expireReconnects() {
    const now = Date.now();
    const gone = [];
    for (const [id, { rev, at }] of this.deadlines) {
      if (at > now) continue;
      const p = this.session.roster.get(id);
      if (this.session.roster.expire(id, rev) && p) gone.push(p.name);
      this.deadlines.delete(id);
    }
    for (const name of gone) this.announce(`${name} left.`);
    this.render();
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
      if (raised && this.webinar && me && me.role === "attendee") this.announce("Your hand is raised: the host can let you talk.");
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

  // Who would take over if the host left now, as the server picks when not told: the co-host
  // present longest, else whoever has been there longest (never a webinar attendee).
  successors() {
    const others = this.session.roster.sorted()
      .filter((p) => p.participant_id !== this.session.participantId && p.connected !== false)
      .filter((p) => !(this.webinar && p.role === "attendee"));
    const cohosts = others.filter((p) => p.role === "cohost");
    return [...cohosts, ...others.filter((p) => p.role !== "cohost")];
  }

  // Everyone but the host just leaves. The host chooses: leave, handing the host role to
  // someone they pick, or end the session for everyone.
  async leave() {
    if (!this.session.isHost()) {
      await this.session.leave();
      return;
    }
    const candidates = this.successors();
    let picker = null;
    if (candidates.length) {
      picker = el("select", { id: "successor" }, ...candidates.map((p) => el("option", {
        value: p.participant_id,
        text: p.role === "cohost" ? `${p.name} (co-host)` : p.name,
      })));
      picker.value = candidates[0].participant_id;
    }
    const extra = picker ? el("div", { class: "field" }, el("label", { for: "successor", text: "Next host" }), picker) : null;
    const choice = await choose({
      title: "Leave the meeting?",
      text: candidates.length
        ? "You are the host. Leave and hand the host role to someone, or end the meeting for everyone."
        : "You are the only one who can host: when you leave, the meeting ends.",
      extra,
      choices: [
        { value: "leave", label: "Leave", kind: "primary", description: candidates.length ? "the meeting goes on with the next host." : "you leave, and the meeting ends." },
        { value: "end", label: "End for all", kind: "danger", description: "everyone leaves now. The meeting and its link stay: you can start it again." },
      ],
    });
    if (choice === "end") {
      await this.moderate("end", {});
    } else if (choice === "leave") {
      await this.session.leave(picker ? { successor: picker.value } : {});
    }
  }

  close() {
    this.closed = true;
    this.banner.hide();
    this.notices.clear();
    clearInterval(this.clock);
    clearTimeout(this.expiry);
    this.breakouts.close();
    this.controls.close();
    if (this.quality) this.quality.stop();
    if (this.media) this.media.close();
  }
}
