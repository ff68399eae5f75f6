// The meeting toolbar: microphone, camera, screen share, hand, layout and panels, with their
// state in aria-pressed and keyboard shortcuts (M, V, S, H) that never fire while typing.
// Each toggle's label (and tooltip) says what a click does now: "Mute" while the microphone
// is on, "Unmute" once it is off, and so on.

import { icon } from "/room/icons.js";

const $ = (id) => document.getElementById(id);

// icons and labels: [not pressed, pressed]; pressed = muted / camera stopped / sharing / hand up.
const TOGGLES = {
  mic: { id: "mic-button", icons: ["mic", "micOff"], labels: ["Mute", "Unmute"], key: "m" },
  camera: { id: "camera-button", icons: ["camera", "cameraOff"], labels: ["Stop video", "Start video"], key: "v" },
  share: { id: "share-button", icons: ["screen", "screen"], labels: ["Share screen", "Stop sharing"], key: "s" },
  hand: { id: "hand-button", icons: ["hand", "hand"], labels: ["Raise hand", "Lower hand"], key: "h" },
};

function typing(target) {
  if (!(target instanceof Element)) return false;
  return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true'], dialog[open]"));
}

export class Controls {
  // actions: {mic(), camera(), share(), hand()} each toggling and returning a promise.
  constructor(actions) {
    this.actions = actions;
    this.buttons = {};
    for (const [name, spec] of Object.entries(TOGGLES)) {
      const button = $(spec.id);
      this.buttons[name] = button;
      // The label in a span of its own, so it can change without touching the icon.
      button.replaceChildren(icon(spec.icons[0]), Object.assign(document.createElement("span"), { className: "control-label", textContent: spec.labels[0] }));
      button.addEventListener("click", () => this.run(name));
    }
    $("react-button").prepend(icon("smile"));
    $("layout-button").replaceChildren(icon("speaker"), Object.assign(document.createElement("span"), { className: "control-label", textContent: "Speaker view" }));
    $("people-button").prepend(icon("people"));
    $("chat-button").prepend(icon("chat"));
    $("apps-button").prepend(icon("apps"));
    $("leave-button").prepend(icon("leave"));
    this.listening = new AbortController();
    document.addEventListener("keydown", (event) => this.shortcut(event), { signal: this.listening.signal });
  }

  // The room closed (the end screen, or a rejoin builds a new room): no more shortcuts here.
  close() {
    this.listening.abort();
  }

  async run(name) {
    const button = this.buttons[name];
    if (button.disabled || button.dataset.busy) return;
    button.dataset.busy = "true";
    try {
      await this.actions[name]();
    } finally {
      delete button.dataset.busy;
    }
  }

  shortcut(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || typing(event.target)) return;
    const key = event.key.toLowerCase();
    for (const [name, spec] of Object.entries(TOGGLES)) {
      if (spec.key === key && !this.buttons[name].disabled && this.buttons[name].isConnected && !document.getElementById("room").hidden) {
        event.preventDefault();
        this.run(name);
      }
    }
  }

  // The layout toggle: "Speaker view" in the grid, "Grid view" in speaker view.
  setLayout(speaker) {
    const button = $("layout-button");
    button.setAttribute("aria-pressed", String(speaker));
    button.querySelector("svg")?.replaceWith(icon(speaker ? "grid" : "speaker"));
    const label = button.querySelector(".control-label");
    if (label) label.textContent = speaker ? "Grid view" : "Speaker view";
    button.title = speaker ? "Grid view" : "Speaker view";
  }

  // pressed: muted / camera stopped / sharing / hand raised.
  set(name, pressed, { disabled = false } = {}) {
    const button = this.buttons[name];
    button.setAttribute("aria-pressed", String(Boolean(pressed)));
    button.disabled = disabled;
    const spec = TOGGLES[name];
    const state = pressed ? 1 : 0;
    const svg = button.querySelector("svg");
    if (svg) svg.replaceWith(icon(spec.icons[state]));
    const label = button.querySelector(".control-label");
    if (label && label.textContent !== spec.labels[state]) label.textContent = spec.labels[state];
    button.title = `${spec.labels[state]} (${spec.key.toUpperCase()})`;
  }
}
