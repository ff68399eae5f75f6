// The waiting room as moderators see it: the queue with admit and deny, and its size on the
// People button, announced as people arrive.

import { el } from "/room/icons.js";

const $ = (id) => document.getElementById(id);

export class WaitingQueue {
  constructor(session, notify) {
    this.session = session;
    this.notify = notify;
  }

  render() {
    const moderator = this.session.isModerator();
    const waiting = moderator ? [...this.session.roster.waiting.values()] : [];
    $("waiting-queue").hidden = waiting.length === 0;
    $("queue-count").textContent = `(${waiting.length})`;
    const badge = $("people-badge");
    badge.hidden = waiting.length === 0;
    badge.textContent = String(waiting.length);
    $("people-button").setAttribute("aria-label", waiting.length ? `People, ${waiting.length} waiting` : "People");
    const focused = document.activeElement;
    const keep = focused && focused.closest && focused.closest("#queue-list") ? focused.getAttribute("aria-label") : null;
    $("queue-list").replaceChildren(...waiting.map((p) => el("li", { class: "queue-item", dataset: { participant: p.participant_id } },
      el("span", { class: "person-name", text: p.name }),
      el("span", { class: "person-tools" },
        el("button", { type: "button", class: "small primary", "aria-label": `Admit ${p.name}`, onclick: () => this.decide("admit", p) }, "Admit"),
        el("button", { type: "button", class: "small secondary", "aria-label": `Deny ${p.name}`, onclick: () => this.decide("deny", p) }, "Deny")))));
    if (keep) {
      const again = [...$("queue-list").querySelectorAll("button")].find((b) => b.getAttribute("aria-label") === keep);
      (again || $("people")).focus?.();
    }
  }

  async decide(action, p) {
    try {
      await this.session.request(action, { participant_id: p.participant_id });
    } catch (error) {
      this.notify(`Could not ${action} ${p.name}: ${error.message}`);
    }
  }
}
