// Chat: to everyone or privately to one participant, with an unread count while the chat
// panel is closed and new messages announced through the page's polite live region.

import { el } from "/room/icons.js";

const $ = (id) => document.getElementById(id);

function time(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export class ChatPanel {
  constructor(session, { announce, notify, onUnread }) {
    this.session = session;
    this.announce = announce;
    this.notify = notify;
    this.onUnread = onUnread;
    this.shown = new Set(); // message ids on screen
    this.unread = 0;
    this.visible = false;
    $("send").addEventListener("submit", (event) => { event.preventDefault(); this.send(); });
    $("text").addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter is a new line.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); this.send(); }
    });
  }

  setVisible(visible) {
    this.visible = visible;
    if (visible) { this.unread = 0; this.onUnread(0); }
  }

  // All messages the session holds, in id order; new ones appended (and counted, announced).
  render({ quiet = false } = {}) {
    const me = this.session.participantId;
    const messages = [...this.session.chat.values()].sort((a, b) => a.message_id - b.message_id);
    const log = $("chat");
    for (const m of messages) {
      if (this.shown.has(m.message_id)) continue;
      this.shown.add(m.message_id);
      const mine = m.from === me;
      const who = mine ? "You" : m.from_name;
      const privacy = m.private ? (mine ? ` (privately to ${m.to_name})` : " (privately to you)") : "";
      const item = el("li", { class: `chat-message${mine ? " mine" : ""}${m.private ? " private" : ""}`, dataset: { messageId: m.message_id } },
        el("div", { class: "chat-meta" }, el("span", { class: "chat-from", text: `${who}${privacy}` }), el("time", { datetime: new Date(m.ts).toISOString(), text: time(m.ts) })),
        el("p", { class: "chat-text", text: m.text }));
      // Keep id order even when a message arrives late (events can cross on the wire).
      const after = [...log.children].find((li) => Number(li.dataset.messageId) > m.message_id);
      log.insertBefore(item, after || null);
      if (!quiet && !mine) {
        if (!this.visible) {
          this.unread += 1;
          this.onUnread(this.unread);
          this.announce(`${m.private ? "Private message" : "Message"} from ${m.from_name}: ${m.text}`);
        }
      }
    }
    if (this.visible) log.scrollTop = log.scrollHeight;
  }

  // The recipient list follows the roster; a departed recipient falls back to everyone.
  renderRecipients() {
    const select = $("chat-to");
    const current = select.value;
    const others = this.session.roster.sorted().filter((p) => p.participant_id !== this.session.participantId);
    select.replaceChildren(el("option", { value: "", text: "Everyone" }),
      ...others.map((p) => el("option", { value: p.participant_id, text: `${p.name} (private)` })));
    select.value = others.some((p) => p.participant_id === current) ? current : "";
  }

  async send() {
    const input = $("text");
    const text = input.value.trim();
    if (!text) return;
    const to = $("chat-to").value;
    const data = to ? { text, to } : { text };
    input.value = "";
    try {
      await this.session.request("chat", data);
    } catch (error) {
      input.value = text; // nothing lost
      this.notify(`Message not sent: ${error.message}`);
    }
  }
}
