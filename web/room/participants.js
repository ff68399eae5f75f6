// The people panel: everyone in meeting order with microphone, camera and hand state, the
// raised hands first-raised-first, and a moderator's controls per person (mute, stop video,
// lower hand, remove; the host also promotes to co-host and demotes).

import { confirmAction } from "/room/dialog.js";
import { el, icon } from "/room/icons.js";

const $ = (id) => document.getElementById(id);
const RANK = { host: 3, cohost: 2, panelist: 1, attendee: 0 };
const ROLE_NAMES = { host: "Host", cohost: "Co-host", panelist: "Panelist", attendee: "" };

export class ParticipantsPanel {
  constructor(session, notify) {
    this.session = session;
    this.notify = notify; // (text) => void, for errors and confirmations
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
    const people = this.session.roster.sorted();
    $("people-count").textContent = `(${people.length})`;
    $("people").replaceChildren(...people.map((p) => this.row(p, me)));
    const hands = this.session.roster.hands();
    $("hands").hidden = hands.length === 0;
    $("hands-list").replaceChildren(...hands.map((p) => {
      const lower = this.session.isModerator() || p.participant_id === me.participant_id
        ? el("button", { type: "button", class: "small secondary", "aria-label": `Lower ${p.name}'s hand`, onclick: () => this.act("hand", { raised: false, participant_id: p.participant_id }) }, "Lower")
        : null;
      return el("li", { dataset: { participant: p.participant_id } }, el("span", { class: "hand-name" }, icon("hand"), el("span", { text: p.name })), lower);
    }));
  }

  row(p, me) {
    const self = p.participant_id === me.participant_id;
    const role = ROLE_NAMES[p.role] || "";
    const state = el("span", { class: "person-state" },
      stateIcon(p.muted ? "micOff" : "mic", p.muted ? "Microphone off" : "Microphone on", p.muted),
      stateIcon(p.camera ? "camera" : "cameraOff", p.camera ? "Camera on" : "Camera off", !p.camera),
      p.hand ? el("span", { role: "img", "aria-label": "Hand raised", class: "state hand-mark" }, icon("hand")) : null,
      p.screen ? el("span", { class: "pill" }, "Sharing") : null);
    const name = el("span", { class: "person-name" }, el("span", { text: self ? `${p.name} (you)` : p.name }),
      role ? el("span", { class: "role", text: role }) : null);
    const row = el("li", { class: "person", dataset: { participant: p.participant_id } }, name, state);
    const tools = this.tools(p, me, self);
    if (tools) row.append(tools);
    return row;
  }

  tools(p, me, self) {
    if (self || !this.session.isModerator() || RANK[p.role] >= RANK[me.role]) {
      return me.role === "host" && p.role === "cohost" && !self ? this.toolbar(p, [this.demote(p)]) : null;
    }
    const buttons = [];
    if (!p.muted) buttons.push(button(`Mute ${p.name}`, "Mute", () => this.act("mute", { muted: true, participant_id: p.participant_id })));
    if (p.camera) buttons.push(button(`Stop ${p.name}'s video`, "Stop video", () => this.act("camera", { on: false, participant_id: p.participant_id })));
    if (p.screen) buttons.push(button(`Stop ${p.name}'s screen share`, "Stop share", () => this.act("screenshare", { on: false, participant_id: p.participant_id })));
    if (me.role === "host" && (p.role === "attendee" || p.role === "panelist")) {
      buttons.push(button(`Make ${p.name} a co-host`, "Make co-host", () => this.act("promote", { participant_id: p.participant_id })));
    }
    buttons.push(button(`Remove ${p.name}`, "Remove", async () => {
      if (await confirmAction(`Remove ${p.name}?`, `${p.name} leaves the meeting and cannot come back.`, "Remove")) {
        this.act("remove", { participant_id: p.participant_id });
      }
    }, "danger"));
    return this.toolbar(p, buttons);
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
