// Visible notices in the room: what the host did ("Ada muted everyone"), and who is waiting to
// be let in. A notice never takes the focus; screen readers hear the same text through the
// page's announcer (room.js), so the notices' region is not a live region itself (it would be
// read twice).
//
// - `show(text)`: goes by itself after a few seconds (held while the pointer or the focus is
//   on it, so nobody loses it mid-read), and has a Dismiss button;
// - `waiting(person, {admit, deny, view})`: "Dee is waiting to join" with Admit, Deny and View
//   right there; it stays while that person waits (a host who looked away still sees it), and
//   goes when they are let in, turned away or leave (`settle(id)`), or on Dismiss.

import { el, icon } from "/room/icons.js";

const SHOWN_MS = 6000;
const MAX_SHOWN = 4; // the oldest passing notices make room for new ones

export class Notices {
  constructor(root) {
    this.root = root;
    this.waitingNotices = new Map(); // participant_id -> element
  }

  show(text, { kind = "info" } = {}) {
    const notice = this.build(text, kind, []);
    this.add(notice);
    this.expire(notice, SHOWN_MS);
    return notice;
  }

  waiting(person, { admit, deny, view }) {
    const id = person.participant_id;
    if (this.waitingNotices.has(id)) return this.waitingNotices.get(id);
    const name = person.name || "Someone";
    const act = (fn) => async () => {
      this.settle(id, { restoreFocus: true });
      await fn();
    };
    const notice = this.build(`${name} is waiting to join.`, "waiting", [
      el("button", { type: "button", class: "small primary", "aria-label": `Admit ${name}`, onclick: act(admit) }, "Admit"),
      el("button", { type: "button", class: "small secondary", "aria-label": `Deny ${name}`, onclick: act(deny) }, "Deny"),
      el("button", { type: "button", class: "small secondary", "aria-label": "View the waiting room", onclick: act(view) }, "View"),
    ]);
    notice.dataset.participant = id;
    this.waitingNotices.set(id, notice);
    this.add(notice);
    return notice;
  }

  // The person is no longer waiting (let in, turned away, gone): their notice goes.
  settle(id, { restoreFocus = false } = {}) {
    const notice = this.waitingNotices.get(id);
    if (!notice) return;
    this.waitingNotices.delete(id);
    this.remove(notice, { restoreFocus });
  }

  // Everyone still waiting, as the roster has it: notices of people no longer there go.
  keepOnly(ids) {
    for (const id of [...this.waitingNotices.keys()]) if (!ids.has(id)) this.settle(id);
  }

  build(text, kind, actions) {
    const notice = el("div", { class: `toast notice notice-${kind}`, role: "group", "aria-label": "Notice" },
      el("p", { class: "notice-text", text }));
    const dismiss = el("button", { type: "button", class: "icon-button notice-dismiss", "aria-label": "Dismiss", title: "Dismiss" }, icon("close"));
    dismiss.addEventListener("click", () => {
      if (notice.dataset.participant) this.waitingNotices.delete(notice.dataset.participant);
      this.remove(notice, { restoreFocus: true });
    });
    notice.append(el("div", { class: "notice-actions" }, ...actions, dismiss));
    return notice;
  }

  add(notice) {
    const passing = [...this.root.querySelectorAll(".notice:not(.notice-waiting)")];
    if (!notice.classList.contains("notice-waiting") && passing.length >= MAX_SHOWN) this.remove(passing[0]);
    this.root.append(notice);
    this.root.hidden = false;
  }

  // Gone after `ms`, but not while someone reads or uses it.
  expire(notice, ms) {
    let timer = null;
    const start = () => { clearTimeout(timer); timer = setTimeout(() => this.remove(notice), ms); };
    const hold = () => clearTimeout(timer);
    notice.addEventListener("pointerenter", hold);
    notice.addEventListener("focusin", hold);
    notice.addEventListener("pointerleave", () => { if (!notice.contains(document.activeElement)) start(); });
    notice.addEventListener("focusout", (event) => { if (!notice.contains(event.relatedTarget)) start(); });
    start();
  }

  // Focus inside a notice that goes moves to the next notice, else to the People button (not
  // to the page's top).
  remove(notice, { restoreFocus = false } = {}) {
    if (!notice.isConnected) return;
    const hadFocus = notice.contains(document.activeElement);
    notice.remove();
    this.root.hidden = this.root.childElementCount === 0;
    if (hadFocus || restoreFocus) {
      const next = this.root.querySelector(".notice button");
      (next || document.getElementById("people-button"))?.focus?.();
    }
  }

  clear() {
    this.waitingNotices.clear();
    this.root.replaceChildren();
    this.root.hidden = true;
  }
}
