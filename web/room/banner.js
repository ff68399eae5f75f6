// The status banner at the top of the room: what is happening to the connection
// ("Reconnecting…", "Reconnected"), and errors. A live region that appears with its text is
// often not read, so the text also goes to the page's always-present polite announcer.
//
// Two kinds of text share it, and one never erases the other:
// - states (`state(channel, text)`): true until cleared, such as the signaling connection
//   ("connection") or the media ("media") being repaired; one line per channel;
// - notices (`show(text, {for})`): for a few seconds, such as "Message not sent"; shown on a
//   line of their own below the states, and when they go, the states are still there.
// `show(text)` without `for` is a state of the "status" channel, and a passing "ok" notice
// ("Reconnected.") ends that channel, as the room used it before channels existed.

const SEVERITY = { ok: 0, warning: 1, error: 2 };
const OWNERS = new WeakMap(); // element -> the Banner that draws it

export class Banner {
  constructor(root, announce) {
    this.root = root;
    this.announce = announce;
    this.states = new Map(); // channel -> {text, kind}
    this.notice = null; // {text, kind}
    this.timer = null;
    OWNERS.set(root, this); // a later room's banner on the same element takes it over
  }

  // A lasting state on its own line; text null (or empty) clears the channel.
  state(channel, text, { kind = "warning" } = {}) {
    const held = this.states.get(channel);
    if (!text) {
      if (!held) return;
      this.states.delete(channel);
    } else {
      if (held && held.text === text && held.kind === kind) return;
      this.states.set(channel, { text, kind });
      if (this.notice && this.notice.kind === "ok") this.dropNotice(); // "Reconnected." is old news
      this.announce(text);
    }
    this.render();
  }

  // kind: ok | warning | error; for: milliseconds before it goes (absent: a "status" state).
  show(text, { kind = "ok", for: ms } = {}) {
    if (!ms) {
      this.state("status", text, { kind });
      return;
    }
    if (kind === "ok") this.states.delete("status"); // "Reconnected." ends "Reconnecting…"
    clearTimeout(this.timer);
    this.notice = { text, kind };
    this.announce(text);
    this.timer = setTimeout(() => {
      this.notice = null;
      // Hidden by someone else meanwhile (the page left the room): it stays hidden.
      if (this.root.hidden) this.states.clear();
      this.render();
    }, ms);
    this.render();
  }

  dropNotice() {
    clearTimeout(this.timer);
    this.notice = null;
  }

  // Everything off (the page is leaving the room).
  hide() {
    clearTimeout(this.timer);
    this.notice = null;
    this.states.clear();
    this.render();
  }

  render() {
    if (OWNERS.get(this.root) !== this) return; // an earlier room's, with a timer still running
    const lines = [...this.states.values()];
    if (this.notice) lines.push(this.notice);
    const shown = lines.map(({ text, kind }) => {
      const line = document.createElement("div");
      line.className = "banner-line";
      line.dataset.kind = kind;
      line.textContent = text;
      return line;
    });
    this.root.replaceChildren(...shown);
    this.root.hidden = lines.length === 0;
    if (lines.length) {
      this.root.dataset.kind = lines.reduce((worst, line) => (SEVERITY[line.kind] > SEVERITY[worst] ? line.kind : worst), "ok");
    }
  }
}
