// The people panel: everyone in meeting order with microphone, camera and hand state, the
// raised hands first-raised-first, and a moderator's controls per person (mute, stop video,
// lower hand, remove; the host also promotes to co-host and demotes).
//
// In a webinar the presenters (host, co-hosts, panelists) are listed first; moderators also
// see the attendees, counted, and let one talk ("Allow to talk": a panelist) or take it back
// ("Stop talking"). An attendee's raised hand is how they ask, so moderators get the button
// beside the hand too. Attendees never see other attendees (the server does not send them).

import { choose } from "/room/dialog.js";
import { el, icon } from "/room/icons.js";

const $ = (id) => document.getElementById(id);
const RANK = { host: 3, cohost: 2, panelist: 1, attendee: 0 };
const ROLE_NAMES = { host: "Host", cohost: "Co-host", panelist: "Panelist", attendee: "" };

export class ParticipantsPanel {
  constructor(session, notify) {
    this.session = session;
    this.notify = notify; // (text) => void, for errors and confirmations
    // The breakout rooms while in use ([{room_id, name}], set by the room), else null: then
    // the list is grouped by room, the main room first.
    this.rooms = () => null;
  }

  get webinar() {
    return Boolean(this.session.meeting && this.session.meeting.kind === "webinar");
  }

  render() {
    // Re-rendering replaces the buttons: keep keyboard focus on the same control.
    const focused = document.activeElement;
    const keep = focused && focused.closest && focused.closest("#people-panel") ? focused.getAttribute("aria-label") : null;
    this.draw();
    if (keep) {
      const again = [...$("people-panel").querySelectorAll("button")].find((b) => b.getAttribute("aria-label") === keep);
      if (again) again.focus();
    }
  }

  draw() {
    const me = this.session.me();
    const everyone = this.session.roster.sorted();
    const audience = this.webinar ? everyone.filter((p) => p.role === "attendee" && p.participant_id !== me.participant_id) : [];
    const listed = this.webinar ? everyone.filter((p) => !audience.includes(p)) : everyone;
    const moderator = this.session.isModerator();
    $("people-count").textContent = `(${moderator ? everyone.length : listed.length})`;
    $("people").replaceChildren(...this.grouped(listed, me));
    $("audience").hidden = !this.webinar || !moderator;
    $("audience-count").textContent = `(${audience.length})`;
    $("audience-list").replaceChildren(...audience.map((p) => this.row(p, me)));
    $("audience-empty").hidden = audience.length > 0;
    const hands = this.session.roster.hands().filter((p) => moderator || !audience.includes(p));
    $("hands").hidden = hands.length === 0;
    $("hands-list").replaceChildren(...hands.map((p) => {
      const lower = moderator || p.participant_id === me.participant_id
        ? button(`Lower ${p.name}'s hand`, "Lower", () => this.act("hand", { raised: false, participant_id: p.participant_id }))
        : null;
      const talk = moderator && this.webinar && p.role === "attendee" ? this.allowTalk(p) : null;
      return el("li", { dataset: { participant: p.participant_id } },
        el("span", { class: "hand-name" }, icon("hand"), el("span", { text: p.participant_id === me.participant_id ? `${p.name} (you)` : p.name })),
        el("span", { class: "person-tools" }, talk, lower));
    }));
  }

  // Everyone's rows; while breakout rooms are in use, under a heading per room.
  grouped(listed, me) {
    const rooms = this.rooms();
    if (!rooms) return listed.map((p) => this.row(p, me));
    const items = [];
    const known = new Set(rooms.map((r) => r.room_id));
    const roomOf = (p) => (p.room && known.has(p.room) ? p.room : "");
    for (const room of [{ room_id: "", name: "Main room" }, ...rooms]) {
      const inside = listed.filter((p) => roomOf(p) === room.room_id);
      if (!inside.length && room.room_id) continue;
      items.push(el("li", { class: "people-group", dataset: { room: room.room_id || "main" } },
        el("h3", { text: room.name }), el("span", { class: "count", text: `(${inside.length})` })));
      items.push(...inside.map((p) => this.row(p, me)));
    }
    return items;
  }

  row(p, me) {
    const self = p.participant_id === me.participant_id;
    const role = ROLE_NAMES[p.role] || "";
    const reconnecting = p.connected === false;
    const state = el("span", { class: "person-state" },
      reconnecting ? el("span", { class: "pill pill-warning" }, "Reconnecting…") : null,
      stateIcon(p.muted ? "micOff" : "mic", p.muted ? "Microphone off" : "Microphone on", p.muted),
      stateIcon(p.camera ? "camera" : "cameraOff", p.camera ? "Camera on" : "Camera off", !p.camera),
      p.hand ? el("span", { role: "img", "aria-label": "Hand raised", class: "state hand-mark" }, icon("hand")) : null,
      p.screen ? el("span", { class: "pill" }, "Sharing") : null);
    const name = el("span", { class: "person-name" }, el("span", { text: self ? `${p.name} (you)` : p.name }),
      role ? el("span", { class: "role", text: role }) : null);
    const row = el("li", { class: "person", dataset: { participant: p.participant_id, role: p.role } }, name, state);
    if (reconnecting) row.classList.add("reconnecting");
    const tools = this.tools(p, me, self);
    if (tools) row.append(tools);
    return row;
  }

  tools(p, me, self) {
    if (self || !this.session.isModerator() || RANK[p.role] >= RANK[me.role]) {
      return me.role === "host" && p.role === "cohost" && !self ? this.toolbar(p, [this.demote(p)]) : null;
    }
    const buttons = [];
    if (this.webinar && p.role === "attendee") buttons.push(this.allowTalk(p));
    if (this.webinar && p.role === "panelist") {
      buttons.push(button(`Stop ${p.name} talking`, "Stop talking", () => this.act("allow_talk", { participant_id: p.participant_id, allowed: false })));
    }
    if (!p.muted) buttons.push(button(`Mute ${p.name}`, "Mute", () => this.act("mute", { muted: true, participant_id: p.participant_id })));
    if (p.camera) buttons.push(button(`Stop ${p.name}'s video`, "Stop video", () => this.act("camera", { on: false, participant_id: p.participant_id })));
    if (p.screen) buttons.push(button(`Stop ${p.name}'s screen share`, "Stop share", () => this.act("screenshare", { on: false, participant_id: p.participant_id })));
    if (me.role === "host" && (p.role === "attendee" || p.role === "panelist")) {
      buttons.push(button(`Make ${p.name} a co-host`, "Make co-host", () => this.act("promote", { participant_id: p.participant_id })));
    }
    buttons.push(button(`Remove ${p.name}`, "Remove", () => this.remove(p), "danger"));
    return this.toolbar(p, buttons);
  }

  allowTalk(p) {
    return button(`Allow ${p.name} to talk`, "Allow to talk", () => this.act("allow_talk", { participant_id: p.participant_id, allowed: true }), "primary");
  }

  // Remove for good (this session), or remove and let them ask again through the waiting room.
  async remove(p) {
    const choice = await choose({
      title: `Remove ${p.name}?`,
      text: `${p.name} leaves the meeting now.`,
      choices: [
        { value: "remove", label: "Remove", kind: "danger", description: "they cannot come back into this meeting." },
        { value: "return", label: "Remove, let back in later", kind: "secondary", description: "they can ask to come back, through the waiting room." },
      ],
    });
    if (!choice) return;
    await this.act("remove", { participant_id: p.participant_id, may_return: choice === "return" });
  }

  demote(p) {
    return button(`Remove co-host from ${p.name}`, "Remove co-host", () => this.act("demote", { participant_id: p.participant_id }));
  }

  toolbar(p, buttons) {
    return el("span", { class: "person-tools", role: "group", "aria-label": `Manage ${p.name}` }, ...buttons);
  }

  async act(action, data) {
    try {
      await this.session.request(action, data);
    } catch (error) {
      this.notify(`Could not ${action.replace("_", " ")}: ${error.message}`);
    }
  }
}

function button(label, text, onclick, kind = "secondary") {
  return el("button", { type: "button", class: `small ${kind}`, "aria-label": label, onclick }, text);
}

function stateIcon(name, label, off) {
  const span = el("span", { role: "img", "aria-label": label, class: off ? "state off" : "state" }, icon(name));
  return span;
}
