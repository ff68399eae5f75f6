// The status banner at the top of the room: what is happening to the connection
// ("Reconnecting…", "Reconnected"), and errors. A live region that appears with its text is
// often not read, so the text also goes to the page's always-present polite announcer.

export class Banner {
  constructor(root, announce) {
    this.root = root;
    this.announce = announce;
    this.timer = null;
  }

  // kind: ok | warning | error; for: milliseconds before it hides (absent: stays).
  show(text, { kind = "ok", for: ms } = {}) {
    clearTimeout(this.timer);
    this.root.textContent = text;
    this.root.dataset.kind = kind;
    this.root.hidden = false;
    this.announce(text);
    if (ms) this.timer = setTimeout(() => this.hide(), ms);
  }

  hide() {
    clearTimeout(this.timer);
    this.root.hidden = true;
  }
}
