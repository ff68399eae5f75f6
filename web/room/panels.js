// The side drawer and its tabs (people, chat, polls, Q&A, whiteboard), and the collaboration
// panels from web/collab/, loaded on their own so the room works (and joins fast) before and
// even without them.

const $ = (id) => document.getElementById(id);

const COLLAB = [
  { key: "polls", module: "/collab/polls.js", exportName: "PollsPanel" },
  { key: "qa", module: "/collab/qa.js", exportName: "QaPanel" },
  { key: "whiteboard", module: "/collab/whiteboard.js", exportName: "WhiteboardPanel" },
];
const TABS = ["people", "chat", "polls", "qa", "whiteboard", "breakouts"];

export class Drawer {
  constructor({ onChange }) {
    this.onChange = onChange;
    this.current = "people";
    this.open = false;
    this.collab = new Map(); // key -> panel instance
    this.unread = new Map(); // key -> count
    for (const key of TABS) {
      $(`tab-${key}`).addEventListener("click", () => this.show(key));
    }
    $("tabs").addEventListener("keydown", (event) => this.arrows(event));
    $("drawer-close").addEventListener("click", () => this.close());
    $("people-button").addEventListener("click", () => this.toggle("people"));
    $("chat-button").addEventListener("click", () => this.toggle("chat"));
    $("apps-button").addEventListener("click", () => this.toggle(this.lastApp || "polls"));
    $("drawer").addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.target.closest("dialog")) this.close();
    });
  }

  // Arrow keys move between tabs (the ARIA tabs pattern); Tab leaves the tablist.
  arrows(event) {
    const tabs = TABS.filter((key) => !$(`tab-${key}`).hidden); // a panel that did not load
    const index = tabs.indexOf(this.current);
    let next = null;
    if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
    if (event.key === "ArrowLeft") next = tabs[(index + tabs.length - 1) % tabs.length];
    if (event.key === "Home") next = tabs[0];
    if (event.key === "End") next = tabs[tabs.length - 1];
    if (next) { event.preventDefault(); this.show(next); $(`tab-${next}`).focus(); }
  }

  toggle(key) {
    if (this.open && this.current === key) this.close();
    else { this.show(key); $(`tab-${key}`).focus(); }
  }

  show(key) {
    this.open = true;
    this.current = key;
    if (!["people", "chat", "breakouts"].includes(key)) this.lastApp = key;
    $("drawer").hidden = false;
    for (const tab of TABS) {
      const selected = tab === key;
      $(`tab-${tab}`).setAttribute("aria-selected", String(selected));
      $(`tab-${tab}`).tabIndex = selected ? 0 : -1;
      $(`${tab}-panel`).hidden = !selected;
      const panel = this.collab.get(tab);
      if (panel) panel.visible = selected;
    }
    this.sync();
  }

  close() {
    this.open = false;
    $("drawer").hidden = true;
    for (const panel of this.collab.values()) panel.visible = false;
    const opener = { people: "people-button", chat: "chat-button", breakouts: "breakouts-button" }[this.current] || "apps-button";
    $(opener).focus();
    this.sync();
  }

  visible(key) {
    return this.open && this.current === key;
  }

  sync() {
    $("people-button").setAttribute("aria-pressed", String(this.visible("people")));
    $("chat-button").setAttribute("aria-pressed", String(this.visible("chat")));
    $("apps-button").setAttribute("aria-pressed", String(this.open && ["polls", "qa", "whiteboard"].includes(this.current)));
    if ($("breakouts-button")) $("breakouts-button").setAttribute("aria-pressed", String(this.visible("breakouts")));
    for (const key of ["polls", "qa", "whiteboard"]) {
      const panel = this.collab.get(key);
      this.setUnread(key, panel ? Number(panel.unread) || 0 : 0);
    }
    this.onChange();
  }

  setUnread(key, count) {
    this.unread.set(key, count);
    const badge = $(`${key}-unread`);
    badge.hidden = !count;
    badge.textContent = count ? String(count) : "";
    if (key === "chat") {
      $("chat-badge").hidden = !count;
      $("chat-badge").textContent = count ? String(count) : "";
      $("chat-button").setAttribute("aria-label", count ? `Chat, ${count} unread` : "Chat");
    } else {
      const apps = ["polls", "qa", "whiteboard"].reduce((sum, k) => sum + (this.unread.get(k) || 0), 0);
      $("apps-badge").hidden = !apps;
      $("apps-badge").textContent = apps ? String(apps) : "";
      $("apps-button").setAttribute("aria-label", apps ? `Activities, ${apps} new` : "Activities");
    }
  }

  // Mount the collaboration panels; a missing module only hides its tab.
  async mountCollab(session) {
    await Promise.all(COLLAB.map(async ({ key, module, exportName }) => {
      try {
        const loaded = await import(module);
        const Panel = loaded[exportName];
        if (typeof Panel !== "function") throw new Error(`${module} has no ${exportName}`);
        const panel = new Panel($(`${key}-panel`), session);
        panel.visible = this.visible(key);
        this.collab.set(key, panel);
      } catch (error) {
        console.warn(`collaboration panel ${key} is not available`, error);
        $(`tab-${key}`).hidden = true;
      }
    }));
    if (this.collab.size === 0) $("apps-button").hidden = true;
    this.sync();
  }

  load(snapshot) {
    if (!snapshot) return;
    for (const [key, panel] of this.collab) {
      try { panel.load(snapshot); } catch (error) { console.error(`${key} panel load failed`, error); }
    }
    this.sync();
  }

  handle(event) {
    if (this.collab.size === 0) return;
    for (const [key, panel] of this.collab) {
      try { panel.handle(event); } catch (error) { console.error(`${key} panel failed on ${event.event}`, error); }
    }
    this.sync();
  }
}
