// Breakout rooms on the page (docs/signaling.md, "Breakout rooms"): what a moderator sets up,
// opens, watches, broadcasts to, visits and closes (the "Rooms" panel of the drawer), and what
// everyone sees and does (the bar under the room's title: the countdowns, the room you are in,
// "Ask for help", "Return to main room", the rooms to pick from).
//
// Opening and closing only change the `breakouts` record; each page moves itself
// (`breakout_move`) when the countdown it was told of ends, and a page that (re)loads while
// the rooms are open follows the record. A move keeps the WebSocket, the devices and the page:
// the publish and subscribe connections are negotiated again for the new room's media (as a
// media repair does), and the room's own chat and whiteboard (the move's reply) replace the
// ones shown. The stage shows only the people in your room; the roster shows everyone, grouped
// by room.

import { el } from "/room/icons.js";

const $ = (id) => document.getElementById(id);

export const MAIN_ROOM = "";
const MAX_ROOMS = 50;
const MAX_NAME = 40;
const MAX_BROADCAST = 500;
const OPEN_COUNTDOWN_S = 10;
const CLOSE_COUNTDOWN_S = 30;
const MAX_OPEN_COUNTDOWN_S = 60;
const MAX_CLOSE_COUNTDOWN_S = 120;
const TICK_MS = 250;
// A move refused as "not open" just at the end of a countdown (clocks differ by more than the
// server's slack) is tried again, this many times, this far apart.
const MOVE_ATTEMPTS = 5;
const MOVE_RETRY_MS = 800;
const BROADCAST_SHOWN_MS = 30_000;
const HELP_REQUEST_PAUSE_MS = 15_000;
const ASSIGNMENTS = [
  ["manual", "By hand", "you choose each person's room"],
  ["random", "At random", "everyone but the hosts, spread evenly"],
  ["choose", "Let participants pick", "each person picks a room when they open"],
];
// Who chose to stay in (or go back to) the main room for this opening: not taken back to
// their room by a reload (sessionStorage: this tab only).
const DECLINED_KEY = "townhall.breakout.declined.";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The record's state at `now` (server ms), as the server computes it (model/breakout.py), with
// "opening" for an open whose countdown still runs.
export function phase(b, now) {
  if (!b || !b.rooms || b.rooms.length === 0) return "none";
  if (!b.opens_at || (b.closes_at && now >= b.closes_at)) return "ready";
  if (b.closes_at) return "closing";
  return now < b.opens_at ? "opening" : "open";
}

function seconds(ms) {
  return Math.max(0, Math.ceil(ms / 1000));
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

function clampInt(value, low, high, fallback) {
  const n = Number.parseInt(value, 10);
  return Number.isFinite(n) ? Math.min(high, Math.max(low, n)) : fallback;
}

export class Breakouts {
  // room: the RoomView (its session, media, stage, chat, drawer, announce, notify, serverOffset).
  constructor(room) {
    this.room = room;
    this.session = room.session;
    this.b = null; // the breakouts record, as last accepted (by rev)
    this.current = MAIN_ROOM; // the room this page's media, chat and board are of
    this.live = false; // moves only once the room's media has started
    this.target = null; // a move asked for while another runs
    this.moving = null;
    this.movingTo = null;
    this.followed = null; // the opening (opens_at) this page has already taken us in for
    this.choices = new Map(); // participant_id -> room picked in the panel, not yet applied
    this.helpAsked = 0;
    this.timer = null;
    this.drawn = { bar: "", panel: "" };
    this.editing = false; // the moderator asked to set the rooms up again
    this.build();
  }

  get meetingId() {
    return this.session.meetingId;
  }

  serverNow() {
    return Date.now() + (this.room.serverOffset || 0);
  }

  phase() {
    return phase(this.b, this.serverNow());
  }

  rooms() {
    return (this.b && this.b.rooms) || [];
  }

  roomName(roomId) {
    if (!roomId) return "the main room";
    const found = this.rooms().find((r) => r.room_id === roomId);
    return found ? found.name : "a breakout room";
  }

  assignedRoom(participantId = this.session.participantId) {
    return (this.b && this.b.assignments && this.b.assignments[participantId]) || MAIN_ROOM;
  }

  // Rooms are in use: open, opening, closing, or someone is still in one.
  inUse() {
    const p = this.phase();
    return p === "opening" || p === "open" || p === "closing"
      || this.session.roster.sorted().some((x) => x.room);
  }

  // The people on this page's stage: those in our room (and ourselves).
  here(people) {
    const me = this.session.participantId;
    return people.filter((p) => p.participant_id === me || (p.room || MAIN_ROOM) === this.current);
  }

  // -- the record ----------------------------------------------------------------------------

  accept(record) {
    if (!record) return false;
    if (this.b && this.b.rev > record.rev) return false;
    const before = this.b;
    this.b = record;
    if (!before || before.rev !== record.rev) this.tellChange(before, record);
    return true;
  }

  // A snapshot (the page's first, or a silent rejoin's): the record, and the room the server
  // has us in. After a rejoin that room may differ from ours (the rooms closed meanwhile: the
  // join put us back in the main room); the snapshot's chat and board are already that room's.
  load(snapshot, { rejoin = false } = {}) {
    if (snapshot.breakouts) this.accept(snapshot.breakouts);
    const room = (snapshot.you && snapshot.you.room) || MAIN_ROOM;
    if (!rejoin || !this.live) {
      this.current = room;
    } else if (room !== this.current) {
      this.current = room;
      this.room.chat.replace(snapshot.chat || []);
      this.switchMedia();
      this.room.announce(room ? `You are in ${this.roomName(room)}.` : "You are back in the main room.");
    }
    this.follow();
  }

  // The room's media has started: from now on the page moves itself.
  start() {
    this.live = true;
    this.follow();
    this.render();
  }

  handle(event) {
    const data = event.data || {};
    switch (event.event) {
      case "breakouts.changed":
        if (this.accept(data.breakouts)) this.follow();
        break;
      case "breakouts.broadcast":
        this.broadcastNotice(data);
        break;
      case "breakouts.help":
        if (this.session.isModerator()) this.helpNotice(data);
        break;
      case "participant.updated": {
        const p = data.participant;
        if (!p || !(data.changed || []).includes("room")) break;
        if (p.participant_id === this.session.participantId) {
          // A moderator moved us: the server has; the page follows (chat, board, media).
          if (data.by && data.by !== this.session.participantId && (p.room || MAIN_ROOM) !== this.current) {
            this.room.announce(`A host moved you to ${this.roomName(p.room)}.`);
            this.move(p.room || MAIN_ROOM);
          }
        } else if (this.live && this.phase() === "open" && (p.room || MAIN_ROOM) === this.current) {
          // Not while the rooms close: everyone comes back then, and that is said once.
          this.room.announce(`${p.name} joined ${this.current ? "this room" : "the main room"}.`);
        }
        break;
      }
      case "chat.message": {
        // Sent in the room we just left, delivered after we moved: not this room's.
        const m = data.message;
        if (m && !m.private && (m.room || MAIN_ROOM) !== this.current) this.session.chat.delete(m.message_id);
        break;
      }
      default:
        break;
    }
  }

  // What everyone hears when the rooms change state.
  tellChange(before, after) {
    const now = this.serverNow();
    const was = phase(before, now);
    const is = phase(after, now);
    if (was === is) return;
    if (is === "opening") this.room.announce(`Breakout rooms open in ${plural(seconds(after.opens_at - now), "second")}. ${this.destination()}`);
    else if (is === "open" && was !== "opening") this.room.announce("Breakout rooms are open.");
    else if (is === "closing") this.room.announce(`Breakout rooms close in ${plural(seconds(after.closes_at - now), "second")}.`);
    else if (is === "ready" && (was === "open" || was === "closing")) this.room.announce("Breakout rooms closed.");
  }

  // Where the opening rooms take this person, in words.
  destination() {
    const assigned = this.assignedRoom();
    if (assigned) return `You're going to ${this.roomName(assigned)}.`;
    if (this.session.isModerator()) return "You stay in the main room and can visit any room.";
    if (this.b && this.b.assignment === "choose") return "You can pick a room when they open.";
    return "You stay in the main room.";
  }

  // -- following the record: countdowns and the moves they end in ----------------------------

  follow() {
    this.schedule();
    if (!this.live || !this.b) return;
    const p = this.phase();
    const goingTo = this.movingTo !== null ? this.movingTo : this.current;
    if (p === "open") {
      const assigned = this.assignedRoom();
      const opening = this.b.opens_at;
      if (assigned && this.followed !== opening) {
        this.followed = opening;
        if (goingTo !== assigned && this.declined() !== opening && this.current === MAIN_ROOM) this.move(assigned);
      }
    } else if (p === "ready" || p === "none") {
      if (goingTo !== MAIN_ROOM) this.move(MAIN_ROOM);
    }
  }

  // A countdown runs: tick until it ends (the text, then the move).
  schedule() {
    const p = this.phase();
    const counting = p === "opening" || p === "closing";
    if (counting && !this.timer) {
      this.timer = setInterval(() => this.tick(), TICK_MS);
    } else if (!counting && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  tick() {
    const p = this.phase();
    if (p !== this.lastTickPhase) {
      this.lastTickPhase = p;
      this.follow();
      this.room.render();
      return;
    }
    this.updateCountdowns();
  }

  declined() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(DECLINED_KEY + this.meetingId) || "null");
      return saved && saved.session === this.session.grant.session_id ? saved.opens_at : null;
    } catch {
      return null;
    }
  }

  decline() {
    if (!this.b) return;
    try {
      sessionStorage.setItem(DECLINED_KEY + this.meetingId, JSON.stringify({ session: this.session.grant.session_id, opens_at: this.b.opens_at }));
    } catch { /* storage off: a reload may take them back to their room */ }
  }

  // -- moving ----------------------------------------------------------------------------------

  // Go to `roomId` ("" for the main room). Moves run one at a time; asked again meanwhile,
  // the last one asked is the next one made.
  move(roomId) {
    this.target = roomId;
    if (!this.moving) {
      this.moving = this.runMoves().finally(() => { this.moving = null; this.movingTo = null; this.render(); });
    }
    return this.moving;
  }

  async runMoves() {
    while (this.target !== null) {
      const roomId = this.target;
      this.target = null;
      this.movingTo = roomId;
      this.render();
      await this.moveOnce(roomId);
    }
  }

  async moveOnce(roomId) {
    let reply = null;
    for (let attempt = 1; ; attempt += 1) {
      try {
        reply = await this.session.request("breakout_move", { room_id: roomId });
        break;
      } catch (error) {
        const open = ["open", "closing", "opening"].includes(this.phase());
        if (error.code === "conflict" && roomId && open && attempt < MOVE_ATTEMPTS && this.target === null) {
          await sleep(MOVE_RETRY_MS);
          continue;
        }
        if (this.target === null) this.room.notify(`Could not go to ${this.roomName(roomId)}: ${error.message}`);
        return;
      }
    }
    await this.enter(reply);
  }

  // The move's reply: we are in `room_id` now, with its chat and its board.
  async enter(reply) {
    const room = reply.room_id || MAIN_ROOM;
    const changed = room !== this.current;
    if (reply.participant) this.session.roster.apply(reply.participant);
    this.current = room;
    this.room.chat.replace(reply.chat || []);
    // Panels that mount later load the session's snapshot: it holds this room's now.
    const snapshot = { ...this.session.snapshot, chat: reply.chat || [], whiteboard: reply.whiteboard || [], whiteboard_more: Boolean(reply.whiteboard_more), seq: this.session.seq };
    this.session.snapshot = snapshot;
    this.session.since = [];
    const board = this.room.drawer.collab.get("whiteboard");
    if (board) {
      try { board.load(snapshot); } catch (error) { console.error("whiteboard load failed", error); }
    }
    for (const [id, notice] of this.helpNotices()) if (notice.dataset.room === room) this.dismiss(notice, id);
    this.room.render();
    if (changed) {
      this.room.announce(room ? `You are in ${this.roomName(room)}.` : "You are back in the main room.");
      await this.switchMedia();
    }
  }

  // Publish and subscribe again, now for our room's media (docs/signaling.md: ask again after
  // a move). The old connections close as the new ones take over; a failure goes through the
  // media's own repair (retries, the banner).
  async switchMedia() {
    const media = this.room.media;
    if (!media || media.closed) return;
    const stage = this.room.stage;
    stage.setSlots(null);
    stage.setSpeaker(null);
    if (media.screen) {
      // The move ended the share on the server; the new room starts without it.
      media.screen.stop();
      media.screen = null;
      this.room.controls.set("share", false);
    }
    const sides = media.mayPublish ? ["subscribe", "publish"] : ["subscribe"];
    // While it lasts the room says so (styles and tests can tell a switch from a stall).
    const room = document.getElementById("room");
    if (room) room.dataset.mediaSwitching = "true";
    try {
      await Promise.all(sides.map(async (kind) => {
        try {
          await media.negotiate(kind);
        } catch (error) {
          console.warn(`media ${kind} after a room move failed`, error);
          media.repairs[kind] = 0;
          await media.repair(kind);
        }
      }));
    } finally {
      if (room) delete room.dataset.mediaSwitching;
    }
  }

  async askForHelp() {
    try {
      await this.session.request("breakout_help", {});
      this.helpAsked = Date.now();
      this.room.banner.show("The hosts were asked to join your room.", { kind: "ok", for: 5000 });
      this.render({ force: true });
      setTimeout(() => this.render({ force: true }), HELP_REQUEST_PAUSE_MS + 50);
    } catch (error) {
      this.room.notify(`Could not ask for help: ${error.message}`);
    }
  }

  returnToMain() {
    this.decline();
    this.move(MAIN_ROOM);
  }

  // -- moderator actions -------------------------------------------------------------------------

  async act(action, data, what) {
    try {
      const reply = await this.session.request(action, data);
      if (reply && reply.breakouts) this.accept(reply.breakouts);
      this.follow();
      this.room.render();
      return true;
    } catch (error) {
      this.room.notify(`Could not ${what}: ${error.message}`);
      return false;
    }
  }

  async setUp(form) {
    const names = [...form.querySelectorAll("input[data-room-name]")].map((input, i) => input.value.trim() || `Room ${i + 1}`);
    const assignment = (form.querySelector("input[name='bo-assignment']:checked") || {}).value || "manual";
    const data = { rooms: names, assignment };
    // Kept where it still fits: who was in room N stays in room N of the new setup.
    if (assignment === "manual" && this.b && this.b.rooms.length) {
      const assignments = {};
      for (const [pid, roomId] of Object.entries(this.b.assignments || {})) {
        const n = this.b.rooms.findIndex((r) => r.room_id === roomId) + 1;
        if (n >= 1 && n <= names.length && this.session.roster.get(pid)) assignments[pid] = n;
      }
      data.assignments = assignments;
    }
    if (await this.act("breakout_setup", data, "set up the rooms")) {
      this.editing = false;
      this.room.announce(`${plural(names.length, "breakout room")} set up.`);
      this.render({ force: true });
      const first = $("breakouts-panel").querySelector("select, button");
      if (first) first.focus();
    }
  }

  // -- building the page's parts -----------------------------------------------------------------

  build() {
    // In the room's title bar: where you are, the countdowns, and what you can do about them.
    this.bar = el("section", { id: "breakout-bar", class: "bo-bar", "aria-label": "Breakout rooms", hidden: true });
    $("room-clock").before(this.bar);
    // Broadcasts and help requests: visible until dismissed (or for a while), and announced.
    this.notices = el("section", { id: "breakout-notices", class: "bo-notices", "aria-label": "Breakout room messages", hidden: true });
    $("room").append(this.notices);
    // The moderators' own toolbar button for the panel.
    this.button = el("button", { id: "breakouts-button", type: "button", class: "control", "aria-pressed": "false", "aria-controls": "drawer", title: "Breakout rooms", hidden: true }, "Rooms");
    this.button.prepend(roomsIcon());
    $("apps-button").after(this.button);
    this.button.addEventListener("click", () => this.room.drawer.toggle("breakouts"));
    this.panel = $("breakouts-panel");
    this.panel.classList.add("bo-panel");
  }

  close() {
    clearInterval(this.timer);
    this.timer = null;
    this.live = false;
  }

  // Called by the room after every change it renders (cheap when nothing of ours changed).
  render({ force = false } = {}) {
    const moderator = this.session.isModerator();
    this.button.hidden = !moderator;
    $("tab-breakouts").hidden = !moderator;
    if (!moderator && this.room.drawer.visible("breakouts")) this.room.drawer.show("people");
    this.button.setAttribute("aria-pressed", String(this.room.drawer.visible("breakouts")));
    this.renderBar(force);
    if (moderator) this.renderPanel(force);
    this.updateCountdowns();
  }

  // -- the bar ---------------------------------------------------------------------------------------

  renderBar(force) {
    const p = this.phase();
    const me = this.session.me();
    const moderator = this.session.isModerator();
    const assigned = this.assignedRoom();
    const visible = p === "opening" || p === "open" || p === "closing" || this.current !== MAIN_ROOM || this.movingTo !== null;
    const helpPaused = Date.now() - this.helpAsked < HELP_REQUEST_PAUSE_MS;
    const occupancy = this.occupancy();
    const key = JSON.stringify([visible, p, this.current, this.movingTo, assigned, moderator, helpPaused,
      this.b && this.b.assignment, this.rooms(), p === "open" && this.current === MAIN_ROOM ? [...occupancy] : null, me && me.participant_id]);
    if (!force && key === this.drawn.bar) return;
    this.drawn.bar = key;
    this.bar.hidden = !visible;
    document.getElementById("room").classList.toggle("in-breakout", this.current !== MAIN_ROOM);
    if (!visible) { this.bar.replaceChildren(); return; }
    const keep = document.activeElement && this.bar.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    const parts = [];
    const where = el("p", { class: "bo-where", tabindex: -1, dataset: { focusKey: "where" } });
    if (this.movingTo !== null) {
      where.append(el("strong", { text: this.movingTo ? `Going to ${this.roomName(this.movingTo)}…` : "Going back to the main room…" }));
    } else if (this.current !== MAIN_ROOM) {
      const visiting = moderator && assigned !== this.current;
      where.append(el("span", { class: "bo-room-pill", text: this.roomName(this.current) }),
        el("strong", { text: visiting ? `You're visiting ${this.roomName(this.current)}` : `You're in ${this.roomName(this.current)}` }));
    } else if (p === "opening") {
      where.append(el("strong", {}, "Breakout rooms open in ", el("span", { class: "bo-count", dataset: { until: "open" } }), " — ",
        this.destination().replace(/^You're/, "you're").replace(/^You /, "you ").replace(/\.$/, "")));
    } else if (p === "open" || p === "closing") {
      where.append(el("strong", { text: "Breakout rooms are open." }), " ",
        el("span", { text: assigned ? `Your room: ${this.roomName(assigned)}.` : "You're in the main room." }));
    }
    if (p === "closing") where.append(" ", el("span", { class: "bo-closing" }, "Rooms close in ", el("span", { class: "bo-count", dataset: { until: "close" } }), "."));
    parts.push(where);
    const actions = el("div", { class: "bo-actions" });
    if (this.movingTo === null && this.current !== MAIN_ROOM) {
      if (!moderator) {
        actions.append(el("button", { type: "button", class: "small secondary", dataset: { focusKey: "help" }, disabled: helpPaused, onclick: () => this.askForHelp() },
          helpPaused ? "Help requested" : "Ask for help"));
      }
      actions.append(el("button", { type: "button", class: "small primary", dataset: { focusKey: "main" }, onclick: () => this.returnToMain() }, "Return to main room"));
    } else if (this.movingTo === null && (p === "open" || p === "closing")) {
      if (assigned) {
        actions.append(el("button", { type: "button", class: "small primary", dataset: { focusKey: `go-${assigned}` }, onclick: () => this.move(assigned) }, `Go to ${this.roomName(assigned)}`));
      } else if (moderator) {
        actions.append(el("button", { type: "button", class: "small secondary", dataset: { focusKey: "manage" }, onclick: () => { this.room.drawer.show("breakouts"); $("tab-breakouts").focus(); } }, "Manage rooms"));
      } else if (this.b && this.b.assignment === "choose" && p === "open") {
        const picker = el("ul", { class: "bo-pick", "aria-label": "Pick a breakout room" });
        for (const r of this.rooms()) {
          const n = occupancy.get(r.room_id) || 0;
          picker.append(el("li", {}, el("button", { type: "button", class: "small secondary", dataset: { focusKey: `go-${r.room_id}` },
            "aria-label": `Join ${r.name}, ${plural(n, "person", "people")} in it`, onclick: () => this.move(r.room_id) },
          el("span", { text: `Join ${r.name}` }), el("span", { class: "bo-n", "aria-hidden": "true", text: ` · ${n}` }))));
        }
        parts[0].append(" ", el("span", { text: "Pick a room:" }));
        actions.append(picker);
      }
    }
    if (actions.childElementCount) parts.push(actions);
    this.bar.replaceChildren(...parts);
    if (keep) {
      const again = this.bar.querySelector(`[data-focus-key="${CSS.escape(keep)}"]`) || where;
      again.focus();
    }
  }

  // People in each breakout room now (room id -> count).
  occupancy() {
    const counts = new Map();
    for (const p of this.session.roster.sorted()) if (p.room) counts.set(p.room, (counts.get(p.room) || 0) + 1);
    return counts;
  }

  // The seconds left, in place (the rest of the bar is not redrawn every tick).
  updateCountdowns() {
    if (!this.b) return;
    const now = this.serverNow();
    for (const span of document.querySelectorAll(".bo-count")) {
      const at = span.dataset.until === "open" ? this.b.opens_at : this.b.closes_at;
      span.textContent = `${seconds(at - now)} s`;
    }
  }

  // -- notices: broadcasts and help requests --------------------------------------------------------

  notice(kind, text, actions, { id = null, room = null, ms = 0 } = {}) {
    const dismiss = el("button", { type: "button", class: "small ghost", "aria-label": "Dismiss this message" }, "Dismiss");
    const notice = el("div", { class: `bo-notice bo-notice-${kind}`, role: "group", "aria-label": kind === "help" ? "Help request" : "Message to every room" },
      el("p", { class: "bo-notice-text", text }), el("div", { class: "bo-actions" }, ...actions, dismiss));
    if (id) notice.dataset.id = id;
    if (room !== null) notice.dataset.room = room;
    dismiss.addEventListener("click", () => this.dismiss(notice, id, { focus: true }));
    if (id) {
      const old = this.notices.querySelector(`[data-id="${CSS.escape(id)}"]`);
      if (old) old.remove();
    }
    this.notices.append(notice);
    this.notices.hidden = false;
    if (ms) {
      let timer = setTimeout(() => this.dismiss(notice), ms);
      notice.addEventListener("focusin", () => clearTimeout(timer));
      notice.addEventListener("focusout", (event) => {
        if (!notice.contains(event.relatedTarget)) timer = setTimeout(() => this.dismiss(notice), 5000);
      });
    }
    return notice;
  }

  dismiss(notice, _id = null, { focus = false } = {}) {
    if (!notice.isConnected) return;
    const hadFocus = focus || notice.contains(document.activeElement);
    notice.remove();
    this.notices.hidden = this.notices.childElementCount === 0;
    if (hadFocus) {
      const next = this.notices.querySelector("button") || (this.session.isModerator() ? this.button : $("people-button"));
      if (next) next.focus();
    }
  }

  helpNotices() {
    return [...this.notices.querySelectorAll(".bo-notice-help")].map((n) => [n.dataset.id, n]);
  }

  broadcastNotice({ text, by_name: byName, by }) {
    if (by === this.session.participantId) {
      this.room.banner.show("Your message went to every room.", { kind: "ok", for: 4000 });
      return;
    }
    const who = byName || "The host";
    this.notice("broadcast", `${who}, to every room: ${text}`, [], { ms: BROADCAST_SHOWN_MS });
    this.room.announce(`Message from ${who} to every room: ${text}`);
  }

  helpNotice({ participant_id: pid, name, room_id: roomId, room_name: roomName }) {
    const text = `${name} asks for help in ${roomName}.`;
    const join = el("button", { type: "button", class: "small primary", "aria-label": `Join ${roomName} to help ${name}` }, "Join room");
    const notice = this.notice("help", text, [join], { id: `help-${pid}`, room: roomId });
    join.addEventListener("click", () => {
      this.dismiss(notice);
      this.move(roomId);
    });
    this.room.announce(`${text} Use "Join room" in the notice to go there.`);
  }

  // -- the moderators' panel ------------------------------------------------------------------------

  renderPanel(force) {
    const p = this.phase();
    const people = this.session.roster.sorted();
    const setup = p === "none" || (this.editing && p === "ready");
    // The setup form depends on nobody's state: a half-typed one is never redrawn.
    const key = setup ? JSON.stringify([p, this.editing, this.b && this.b.rev])
      : JSON.stringify([p, this.editing, this.b, this.current, this.movingTo,
        people.map((x) => [x.participant_id, x.name, x.role, x.room, x.connected]), [...this.choices]]);
    if (!force && key === this.drawn.panel) return;
    this.drawn.panel = key;
    const active = document.activeElement;
    const keep = active && this.panel.contains(active) ? active.dataset.focusKey : null;
    const parts = [el("h2", { class: "collab-heading", id: "bo-heading", tabindex: -1, dataset: { focusKey: "heading" }, text: "Breakout rooms" })];
    if (setup) {
      parts.push(this.buildSetup());
    } else if (p === "ready") {
      parts.push(this.readyView(people));
    } else {
      parts.push(this.openView(p, people));
    }
    parts.push(el("p", { class: "collab-error", role: "alert", id: "bo-panel-error" }));
    this.panel.replaceChildren(...parts);
    if (keep) {
      // The same control again, or (it is gone: the rooms opened or closed) the heading, not
      // the top of the page.
      const again = this.panel.querySelector(`[data-focus-key="${CSS.escape(keep)}"]`) || $("bo-heading");
      if (again !== document.activeElement) again.focus();
    }
  }

  buildSetup() {
    const previous = this.rooms();
    const count = el("input", { id: "bo-count", type: "number", min: 1, max: MAX_ROOMS, value: previous.length || 2, inputmode: "numeric", dataset: { focusKey: "count" } });
    const names = el("ol", { class: "bo-names" });
    const syncNames = () => {
      const n = clampInt(count.value, 1, MAX_ROOMS, 2);
      while (names.children.length < n) {
        const i = names.children.length + 1;
        const id = `bo-name-${i}`;
        const old = previous[i - 1];
        names.append(el("li", {}, el("label", { for: id, class: "visually-hidden", text: `Name of room ${i}` }),
          el("input", { id, maxlength: MAX_NAME, value: old ? old.name : `Room ${i}`, autocomplete: "off", dataset: { roomName: String(i), focusKey: `name-${i}` } })));
      }
      while (names.children.length > n) names.lastElementChild.remove();
    };
    count.addEventListener("input", syncNames);
    syncNames();
    const mode = (this.b && this.b.assignment) || "manual";
    const radios = el("fieldset", { class: "bo-modes" }, el("legend", { text: "Assign people" }),
      ...ASSIGNMENTS.map(([value, label, hint]) => el("label", { class: "check bo-mode" },
        el("input", { type: "radio", name: "bo-assignment", value, checked: value === mode, dataset: { focusKey: `mode-${value}` } }),
        el("span", {}, el("span", { text: label }), el("span", { class: "muted small", text: ` — ${hint}` })))));
    const buttons = el("div", { class: "row" }, el("button", { type: "submit", class: "primary", dataset: { focusKey: "create" } }, previous.length ? "Save rooms" : "Create rooms"));
    if (this.editing) {
      buttons.append(el("button", { type: "button", class: "secondary", onclick: () => { this.editing = false; this.render({ force: true }); } }, "Cancel"));
    }
    const form = el("form", { class: "collab-card stack-sm bo-setup", "aria-label": "Set up breakout rooms", novalidate: true },
      el("div", { class: "field" }, el("label", { for: "bo-count", text: "Number of rooms" }), count),
      el("fieldset", {}, el("legend", { text: "Room names" }), names),
      radios, buttons);
    form.addEventListener("submit", (event) => { event.preventDefault(); this.setUp(form); });
    this.setupForm = form;
    return form;
  }

  // Set up, not open: who goes where (each change is sent at once), and Open.
  readyView(people) {
    const b = this.b;
    const view = el("div", { class: "stack-sm" });
    view.append(el("p", { class: "muted small", text: {
      manual: "Choose each person's room below.",
      random: "People were spread at random: change anyone's room below.",
      choose: "Everyone picks a room when they open.",
    }[b.assignment] || "" }));
    // Each room and who goes to it, as the server has it.
    view.append(el("ul", { class: "bo-overview", "aria-label": "Rooms" }, ...b.rooms.map((r) => {
      const going = people.filter((x) => (b.assignments || {})[x.participant_id] === r.room_id).map((x) => x.name);
      return el("li", {}, el("strong", { text: `${r.name} (${going.length})` }), `: ${going.length ? going.join(", ") : "nobody yet"}`);
    })));
    const others = people.filter((x) => x.participant_id !== this.session.participantId);
    const list = el("ul", { class: "bo-assign", "aria-label": "Who goes where" });
    for (const person of others) {
      const select = this.roomSelect(person, b.assignments[person.participant_id] || MAIN_ROOM, { unassigned: "Not assigned" });
      select.addEventListener("change", () => this.act("breakout_assign", { participant_id: person.participant_id, room_id: select.value }, `assign ${person.name}`));
      list.append(el("li", { class: "bo-person" }, el("label", { for: select.id, text: person.name }), select));
    }
    if (!others.length) list.append(el("li", { class: "muted small", text: "Nobody else is here yet." }));
    view.append(el("h3", { class: "bo-sub", text: b.assignment === "choose" ? "Suggested rooms (people may pick another)" : "Who goes where" }), list);
    if (b.assignment === "choose") view.append(el("p", { class: "muted small", text: "People you assign here go straight to their room; the others pick one." }));
    const countdown = el("input", { id: "bo-open-countdown", type: "number", min: 0, max: MAX_OPEN_COUNTDOWN_S, value: this.openCountdown ?? OPEN_COUNTDOWN_S, inputmode: "numeric", class: "bo-seconds", dataset: { focusKey: "open-countdown" } });
    countdown.addEventListener("input", () => { this.openCountdown = countdown.value; });
    const open = el("button", { type: "button", class: "primary", dataset: { focusKey: "open" } }, "Open rooms");
    open.addEventListener("click", () => {
      const s = clampInt(countdown.value, 0, MAX_OPEN_COUNTDOWN_S, OPEN_COUNTDOWN_S);
      this.act("breakout_open", { countdown: s }, "open the rooms");
    });
    view.append(el("div", { class: "bo-go row" },
      el("label", { for: "bo-open-countdown", text: "Countdown (seconds)" }), countdown, open));
    view.append(el("button", { type: "button", class: "secondary small", dataset: { focusKey: "edit" }, onclick: () => { this.editing = true; this.setupForm = null; this.render({ force: true }); $("bo-count").focus(); } }, "Change rooms"));
    return view;
  }

  // Open, opening or closing: each room with who is in it, visits and moves, the broadcast,
  // and Close.
  openView(p, people) {
    const b = this.b;
    const view = el("div", { class: "stack-sm" });
    const status = el("p", { class: "bo-status" });
    const inRooms = people.filter((x) => x.room).length;
    if (p === "opening") status.append("Opening in ", el("span", { class: "bo-count", dataset: { until: "open" } }), ".");
    else if (p === "closing") status.append("Closing in ", el("span", { class: "bo-count", dataset: { until: "close" } }), ". Everyone comes back to the main room.");
    else status.append(`Open: ${plural(inRooms, "person", "people")} in breakout rooms, ${people.length - inRooms} in the main room.`);
    view.append(status);
    let closeRow;
    const closeNow = el("button", { type: "button", class: "danger", dataset: { focusKey: "close-now" } }, "Close now");
    closeNow.addEventListener("click", () => this.act("breakout_close", { countdown: 0 }, "close the rooms"));
    if (p === "opening" || p === "open") {
      const countdown = el("input", { id: "bo-close-countdown", type: "number", min: 0, max: MAX_CLOSE_COUNTDOWN_S, value: this.closeCountdown ?? CLOSE_COUNTDOWN_S, inputmode: "numeric", class: "bo-seconds", dataset: { focusKey: "close-countdown" } });
      countdown.addEventListener("input", () => { this.closeCountdown = countdown.value; });
      const close = el("button", { type: "button", class: "primary", dataset: { focusKey: "close" } }, "Close rooms");
      close.addEventListener("click", () => {
        const s = clampInt(countdown.value, 0, MAX_CLOSE_COUNTDOWN_S, CLOSE_COUNTDOWN_S);
        this.act("breakout_close", { countdown: s }, "close the rooms");
      });
      closeRow = (el("div", { class: "bo-go row" }, el("label", { for: "bo-close-countdown", text: "Countdown (seconds)" }), countdown, close, closeNow));
    } else {
      closeRow = (el("div", { class: "bo-go row" }, closeNow));
    }
    view.append(closeRow);
    const groups = [{ room_id: MAIN_ROOM, name: "Main room" }, ...b.rooms];
    const list = el("ul", { class: "bo-rooms", "aria-label": "Rooms and who is in them" });
    for (const r of groups) {
      const inside = people.filter((x) => (x.room || MAIN_ROOM) === r.room_id);
      const waiting = r.room_id ? people.filter((x) => !x.room && b.assignments[x.participant_id] === r.room_id) : [];
      const here = this.current === r.room_id;
      const head = el("div", { class: "bo-room-head" }, el("h3", { text: r.name }), el("span", { class: "count", text: `(${inside.length})` }));
      if (here) head.append(el("span", { class: "pill", text: "You're here" }));
      else if (r.room_id && p !== "opening" || !r.room_id && this.current) {
        head.append(el("button", { type: "button", class: "small secondary", dataset: { focusKey: `visit-${r.room_id}` }, "aria-label": r.room_id ? `Join ${r.name}` : "Return to main room",
          disabled: this.movingTo !== null, onclick: () => this.move(r.room_id) }, r.room_id ? "Join" : "Return"));
      }
      const members = el("ul", { class: "bo-members", "aria-label": `In ${r.name}` });
      for (const person of inside) members.append(this.memberRow(person, r));
      if (!inside.length) members.append(el("li", { class: "muted small", text: "Nobody" }));
      const item = el("li", { class: "bo-room", dataset: { room: r.room_id || "main" } }, head, members);
      if (waiting.length) item.append(el("p", { class: "muted small", text: `Assigned, not there yet: ${waiting.map((x) => x.name).join(", ")}` }));
      list.append(item);
    }
    view.append(list);
    if (p === "open" || p === "closing") {
      const text = el("textarea", { id: "bo-broadcast", rows: 2, maxlength: MAX_BROADCAST, placeholder: "e.g. Five minutes left", dataset: { focusKey: "broadcast" } });
      if (this.draft) text.value = this.draft;
      text.addEventListener("input", () => { this.draft = text.value; });
      const form = el("form", { class: "collab-card stack-sm", "aria-label": "Broadcast" },
        el("label", { for: "bo-broadcast", text: "Message to every room" }), text,
        el("button", { type: "submit", class: "secondary", dataset: { focusKey: "send-broadcast" } }, "Send to all rooms"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const value = text.value.trim();
        if (!value) { text.focus(); return; }
        if (await this.act("breakout_broadcast", { text: value }, "send the message")) {
          this.draft = "";
          text.value = "";
        }
      });
      view.append(form);
    }
    return view;
  }

  // One person in a room, with "Move to" (a picker and a button: arrow keys in a picker must
  // not move anyone).
  memberRow(person, room) {
    const self = person.participant_id === this.session.participantId;
    const row = el("li", { class: "bo-person", dataset: { participant: person.participant_id } },
      el("span", { class: "bo-name", text: self ? `${person.name} (you)` : person.name }));
    if (self) return row;
    const chosen = this.choices.has(person.participant_id) ? this.choices.get(person.participant_id) : room.room_id;
    const select = this.roomSelect(person, chosen, { unassigned: "Main room" });
    select.setAttribute("aria-label", `Room for ${person.name}`);
    select.addEventListener("change", () => { this.choices.set(person.participant_id, select.value); });
    const go = el("button", { type: "button", class: "small secondary", dataset: { focusKey: `move-${person.participant_id}` }, "aria-label": `Move ${person.name}` }, "Move");
    go.addEventListener("click", async () => {
      const target = select.value;
      if (target === (person.room || MAIN_ROOM)) return;
      this.choices.delete(person.participant_id);
      await this.act("breakout_assign", { participant_id: person.participant_id, room_id: target }, `move ${person.name}`);
    });
    row.append(el("span", { class: "bo-move" }, select, go));
    return row;
  }

  roomSelect(person, value, { unassigned }) {
    const select = el("select", { id: `bo-room-${person.participant_id}`, dataset: { focusKey: `room-${person.participant_id}` } },
      el("option", { value: MAIN_ROOM, text: unassigned }),
      ...this.rooms().map((r) => el("option", { value: r.room_id, text: r.name })));
    select.value = value;
    return select;
  }
}

// Four rooms: the toolbar's "Rooms" icon (decorative, like the others).
function roomsIcon() {
  const SVG = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M2 3h9v8H2zm2 2v4h5V5zm9-2h9v8h-9zm2 2v4h5V5zM2 13h9v8H2zm2 2v4h5v-4zm9-2h9v8h-9zm2 2v4h5v-4z");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("fill-rule", "evenodd");
  svg.append(path);
  return svg;
}
