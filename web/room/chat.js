// Chat: to everyone or privately to one participant, with an unread count while the chat
// panel is closed and new messages announced through the page's polite live region.
//
// A message being sent shows in the log as "Sending…" until its outcome is known: the session
// keeps it (and its request id) across a stalled or dropped socket and sends it again on the
// next one with the same id, so it is delivered once. Only a refusal is "not sent" (the text
// goes back into the box); a message whose outcome stays unknown says so and offers "Retry",
// which sends it with the same id again (the server drops the copy if the first arrived).

import { requestId } from "/signaling.js";
import { el } from "/room/icons.js";

const $ = (id) => document.getElementById(id);
// A retry keeps the request id, which the server remembers for 10 minutes.
const RETRY_WITHIN_MS = 9 * 60_000;

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
      // Keep id order even when a message arrives late (events can cross on the wire); the
      // messages still being sent stay last.
      const after = [...log.children].find((li) => li.dataset.requestId || Number(li.dataset.messageId) > m.message_id);
      log.insertBefore(item, after || null);
      // Ours, confirmed: its "Sending…" line gives way to it.
      for (const li of log.querySelectorAll(`li[data-confirmed-as="${m.message_id}"]`)) li.remove();
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

  // The page moved to another breakout room (or back): that room's messages replace the ones
  // shown. Private messages are nobody's room's and stay, and so do ours still being sent.
  replace(messages) {
    const chat = this.session.chat;
    for (const [id, m] of chat) if (!m.private) chat.delete(id);
    for (const m of messages) chat.set(m.message_id, m);
    this.shown.clear();
    for (const li of [...$("chat").children]) if (!li.dataset.requestId) li.remove();
    this.render({ quiet: true });
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
    this.deliver(requestId(), data, { retry: false, since: Date.now() });
  }

  // Send (or send again, with the same id) and show where it stands until it is known.
  async deliver(id, data, { retry, since }) {
    const item = this.pendingItem(id, data);
    this.setPending(item, "Sending…");
    let reply;
    try {
      reply = await this.session.request("chat", data, { id, retry, since });
    } catch (error) {
      if (error.maybeSent) {
        // It may have arrived: never "not sent", and a retry keeps the id (no second copy),
        // while the server still remembers the id (10 minutes). After that, the person decides.
        if (Date.now() - since < RETRY_WITHIN_MS) {
          this.setPending(item, "Not confirmed.", () => this.deliver(id, data, { retry: true, since }));
        } else {
          this.setPending(item, "Not confirmed: it may not have been sent.");
          const input = $("text");
          if (!input.value.trim()) input.value = data.text;
        }
        return;
      }
      item.remove();
      const input = $("text");
      if (!input.value.trim()) input.value = data.text; // nothing lost
      this.notify(`Message not sent: ${error.message}`);
      return;
    }
    const messageId = reply && reply.message_id;
    if (messageId && !this.shown.has(messageId)) item.dataset.confirmedAs = String(messageId); // the event is on its way
    else item.remove(); // shown already (or a retry found the first copy delivered)
    this.render({ quiet: true });
  }

  pendingItem(id, data) {
    const log = $("chat");
    const found = [...log.children].find((li) => li.dataset.requestId === id);
    if (found) return found;
    let privacy = "";
    if (data.to) {
      const to = this.session.roster.get(data.to);
      privacy = ` (privately to ${to ? to.name : "one person"})`;
    }
    const status = el("span", { class: "chat-status", role: "status" });
    const item = el("li", { class: `chat-message mine pending${data.to ? " private" : ""}`, dataset: { requestId: id } },
      el("div", { class: "chat-meta" }, el("span", { class: "chat-from", text: `You${privacy}` }), status),
      el("p", { class: "chat-text", text: data.text }));
    log.append(item);
    if (this.visible) log.scrollTop = log.scrollHeight;
    return item;
  }

  setPending(item, text, retry = null) {
    const status = item.querySelector(".chat-status");
    status.replaceChildren(text);
    if (retry) {
      status.append(" ", el("button", { type: "button", class: "ghost small chat-retry", onclick: (event) => { event.currentTarget.remove(); retry(); } }, "Retry"));
    }
  }
}
