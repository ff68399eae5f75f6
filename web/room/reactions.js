// Reactions: emoji that float up over the stage and fade (or just fade, with reduced motion),
// announced politely for screen readers.

import { el } from "/room/icons.js";

export const EMOJI = ["👍", "👏", "❤️", "😂", "😮", "🎉", "🙌", "🤔"];
const LIFETIME_MS = 4000;
const MAX_ON_SCREEN = 30;

const $ = (id) => document.getElementById(id);

export class Reactions {
  constructor(session, { announce, notify }) {
    this.session = session;
    this.announce = announce;
    this.notify = notify;
    this.menu = $("react-menu");
    this.button = $("react-button");
    this.menu.append(...EMOJI.map((emoji) => el("button", { type: "button", class: "emoji", "aria-label": `React ${emoji}`, onclick: () => this.send(emoji) }, emoji)));
    this.button.addEventListener("click", () => this.toggle());
    this.menu.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { this.toggle(false); this.button.focus(); }
    });
    document.addEventListener("click", (event) => {
      if (!this.menu.hidden && !event.target.closest(".menu-anchor")) this.toggle(false);
    });
  }

  toggle(open = this.menu.hidden) {
    this.menu.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
    if (open) this.menu.querySelector("button").focus();
  }

  async send(emoji) {
    this.toggle(false);
    this.button.focus();
    try {
      await this.session.request("react", { emoji });
    } catch (error) {
      this.notify(`Reaction not sent: ${error.message}`);
    }
  }

  show({ name, emoji, participant_id: from }) {
    const layer = $("reactions-layer");
    while (layer.children.length >= MAX_ON_SCREEN) layer.firstChild.remove();
    // Spread across the width by a hash of sender and time, without inline styles (CSP).
    const lane = String((from.length + Date.now()) % 8);
    const bubble = el("div", { class: "reaction", dataset: { lane } }, el("span", { class: "reaction-emoji", text: emoji }), el("span", { class: "reaction-name", text: name }));
    layer.append(bubble);
    setTimeout(() => bubble.remove(), LIFETIME_MS);
    this.announce(`${from === this.session.participantId ? "You" : name} reacted ${emoji}`);
  }
}
