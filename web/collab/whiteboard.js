// Whiteboard panel: a shared canvas. Strokes are drawn with pointer events (mouse, pen, touch),
// kept in normalized coordinates (0..1 on a 16:9 board, so every screen shows the same
// drawing), sent on pointerup, and redrawn from the list on every resize. Moderators clear.
//
// Ordering: a stroke's id is the `seq` of the action that drew it. A `whiteboard.cleared`
// event drops every stroke at or below its seq, also strokes whose events arrive later.

import { failure, h, uid } from "./dom.js";

const MAX_POINTS = 1000;
const MIN_STEP = 0.002; // skip pointer moves smaller than this (normalized), to keep strokes small
const HISTORY_PAGES = 200; // bound on wb_history round trips when a late joiner pages back
const BOARD_WIDTH = 800; // stroke widths are in pixels of an 800-pixel-wide board, scaled
const COLORS = [
  ["#111111", "Black"], ["#e53935", "Red"], ["#1e88e5", "Blue"], ["#43a047", "Green"],
  ["#fb8c00", "Orange"], ["#8e24aa", "Purple"], ["#ffffff", "White"],
];

export class WhiteboardPanel {
  constructor(root, session) {
    this.root = root;
    this.session = session;
    this.strokes = new Map(); // stroke_id -> stroke (committed)
    this.pending = []; // my strokes not yet acknowledged
    this.clearedSeq = 0;
    this.drawing = null;
    this.unseen = 0;
    this.shown = false;
    this.color = COLORS[1][0];
    this.width = 4;
    this.loadToken = 0;
    this.build();
  }

  // -- the room's interface -------------------------------------------------------------------

  load(snapshot) {
    this.strokes.clear();
    this.pending = [];
    this.clearedSeq = 0;
    this.kind = snapshot.meeting ? snapshot.meeting.kind : undefined;
    for (const stroke of snapshot.whiteboard || []) this.strokes.set(stroke.stroke_id, stroke);
    this.syncRole();
    this.redraw();
    const token = ++this.loadToken;
    if (snapshot.whiteboard_more) {
      // Page back from the oldest stroke held, or from now if the snapshot had room for none.
      const held = snapshot.whiteboard || [];
      const before = held.length ? held[0].stroke_id : (snapshot.seq || 0) + 1;
      this.pageBack(before, token).catch((error) => {
        this.status.textContent = failure(error, "load the older drawing");
      });
    }
  }

  handle(event) {
    if (!event || event.type !== "event") return;
    if (event.event === "whiteboard.stroke") {
      const stroke = event.data && event.data.stroke;
      if (!stroke || stroke.stroke_id <= this.clearedSeq || this.strokes.has(stroke.stroke_id)) return;
      // A stroke of the breakout room just left can arrive after the move: not this board's.
      if ((stroke.room || "") !== ((this.session.me() || {}).room || "")) return;
      this.strokes.set(stroke.stroke_id, stroke);
      const me = this.session.me();
      if (!me || stroke.by !== me.participant_id) {
        if (!this.shown) this.unseen = Math.min(this.unseen + 1, 99);
      }
      this.drawStroke(stroke);
    } else if (event.event === "whiteboard.cleared") {
      if (((event.data || {}).room_id || "") !== ((this.session.me() || {}).room || "")) return;
      this.clear(event.seq);
      this.session.announce("The whiteboard was cleared.");
    } else if (event.event === "participant.updated") {
      this.syncRole();
    }
  }

  get unread() {
    return this.unseen;
  }

  set visible(value) {
    this.shown = Boolean(value);
    if (this.shown) {
      this.unseen = 0;
      // A hidden canvas has no size: measure and redraw once it shows.
      requestAnimationFrame(() => this.resize());
    }
  }

  // -- state ----------------------------------------------------------------------------------

  clear(seq) {
    this.clearedSeq = Math.max(this.clearedSeq, seq || 0);
    for (const id of [...this.strokes.keys()]) if (id <= this.clearedSeq) this.strokes.delete(id);
    this.pending = [];
    this.redraw();
  }

  async pageBack(before, token) {
    for (let page = 0; page < HISTORY_PAGES && token === this.loadToken; page += 1) {
      const reply = await this.session.request("wb_history", { before });
      if (token !== this.loadToken) return;
      for (const stroke of reply.strokes || []) {
        if (stroke.stroke_id > this.clearedSeq) this.strokes.set(stroke.stroke_id, stroke);
      }
      this.redraw();
      if (!reply.more || !reply.strokes || !reply.strokes.length) return;
      before = reply.strokes[0].stroke_id;
    }
  }

  // -- rendering ------------------------------------------------------------------------------

  build() {
    this.root.classList.add("collab-panel", "wb-panel");
    const swatches = h("div", { class: "wb-swatches", role: "radiogroup", "aria-label": "Colour" });
    this.swatchButtons = COLORS.map(([value, name]) => {
      const button = h("button", {
        type: "button", role: "radio", class: "wb-swatch", "aria-label": name,
        "aria-checked": String(value === this.color), "data-color": value, title: name,
        tabindex: value === this.color ? 0 : -1,
      });
      button.style.setProperty("--swatch", value); // CSSOM: allowed under the CSP
      button.addEventListener("click", () => this.pickColor(value, button));
      return button;
    });
    swatches.append(...this.swatchButtons);
    swatches.addEventListener("keydown", (event) => this.swatchKeys(event));
    const widthId = uid("wb-width");
    this.widthInput = h("input", { id: widthId, type: "range", min: 1, max: 40, step: 1, value: this.width });
    this.widthOut = h("output", { for: widthId, class: "wb-width-value", text: `${this.width}` });
    this.widthInput.addEventListener("input", () => {
      this.width = Number(this.widthInput.value);
      this.widthOut.textContent = `${this.width}`;
    });
    this.clearButton = h("button", { type: "button", class: "secondary small", text: "Clear board" });
    this.clearButton.addEventListener("click", async () => {
      this.status.textContent = "";
      try {
        await this.session.request("wb_clear", {});
      } catch (error) {
        this.status.textContent = failure(error, "clear the whiteboard");
      }
    });
    const tools = h("div", { class: "wb-tools", role: "toolbar", "aria-label": "Whiteboard tools" },
      swatches,
      h("span", { class: "wb-width" }, h("label", { for: widthId, text: "Width" }), this.widthInput, this.widthOut),
      this.clearButton);
    this.canvas = h("canvas", {
      class: "wb-canvas", role: "img",
      "aria-label": "Shared whiteboard. Draw with a mouse, pen or finger; everyone in the meeting sees it.",
    });
    this.viewOnly = h("p", { class: "muted small", text: "Webinar attendees can watch the whiteboard but not draw.", hidden: true });
    this.status = h("p", { class: "collab-error", role: "alert" });
    this.root.replaceChildren(h("h2", { class: "collab-heading", text: "Whiteboard" }), tools, this.viewOnly,
      h("div", { class: "wb-frame" }, this.canvas), this.status);
    this.ctx = this.canvas.getContext("2d");
    this.canvas.addEventListener("pointerdown", (e) => this.down(e));
    this.canvas.addEventListener("pointermove", (e) => this.move(e));
    this.canvas.addEventListener("pointerup", (e) => this.up(e));
    this.canvas.addEventListener("pointercancel", () => { this.drawing = null; this.redraw(); });
    if (typeof ResizeObserver === "function") {
      this.observer = new ResizeObserver(() => this.resize());
      this.observer.observe(this.canvas);
    }
    window.addEventListener("resize", () => this.resize());
    this.syncRole();
  }

  mayDraw() {
    const me = this.session.me();
    // Webinar attendees are view-only (the server refuses their strokes too).
    return !(me && me.role === "attendee" && this.kind === "webinar");
  }

  syncRole() {
    this.clearButton.hidden = !this.session.isModerator();
    const may = this.mayDraw();
    this.viewOnly.hidden = may;
    this.canvas.classList.toggle("wb-view-only", !may);
  }

  pickColor(value, button) {
    this.color = value;
    for (const b of this.swatchButtons) {
      const on = b === button;
      b.setAttribute("aria-checked", String(on));
      b.tabIndex = on ? 0 : -1;
    }
  }

  // Arrow keys move within the colour radio group (the ARIA radio group pattern).
  swatchKeys(event) {
    const index = this.swatchButtons.findIndex((b) => b.getAttribute("aria-checked") === "true");
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = this.swatchButtons[(index + step + this.swatchButtons.length) % this.swatchButtons.length];
    this.pickColor(next.dataset.color, next);
    next.focus();
  }

  resize() {
    const rect = this.canvas.getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.round(rect.width * ratio);
    const height = Math.round(rect.height * ratio);
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    this.redraw();
  }

  redraw() {
    const { width, height } = this.canvas;
    this.ctx.clearRect(0, 0, width, height);
    const committed = [...this.strokes.values()].sort((a, b) => a.stroke_id - b.stroke_id);
    for (const stroke of committed) this.drawStroke(stroke);
    for (const stroke of this.pending) this.drawStroke(stroke);
    if (this.drawing) this.drawStroke(this.drawing);
  }

  drawStroke(stroke) {
    const { width, height } = this.canvas;
    const points = stroke.points || [];
    if (!width || !points.length) return;
    const ctx = this.ctx;
    ctx.strokeStyle = stroke.color;
    ctx.fillStyle = stroke.color;
    ctx.lineWidth = Math.max(1, (stroke.width * width) / BOARD_WIDTH);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(points[0][0] * width, points[0][1] * height);
    for (const [x, y] of points.slice(1)) ctx.lineTo(x * width, y * height);
    ctx.stroke();
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [
      Math.round(clamp((event.clientX - rect.left) / rect.width) * 10000) / 10000,
      Math.round(clamp((event.clientY - rect.top) / rect.height) * 10000) / 10000,
    ];
  }

  down(event) {
    if (event.button !== undefined && event.button !== 0) return;
    if (!this.mayDraw()) return;
    event.preventDefault();
    this.canvas.setPointerCapture?.(event.pointerId);
    this.drawing = { color: this.color, width: this.width, points: [this.point(event)] };
  }

  move(event) {
    if (!this.drawing) return;
    const p = this.point(event);
    const last = this.drawing.points[this.drawing.points.length - 1];
    if (Math.hypot(p[0] - last[0], p[1] - last[1]) < MIN_STEP) return;
    this.drawing.points.push(p);
    const segment = { ...this.drawing, points: [last, p] };
    this.drawStroke(segment);
  }

  up(event) {
    if (!this.drawing) return;
    const stroke = this.drawing;
    this.drawing = null;
    const p = this.point(event);
    const last = stroke.points[stroke.points.length - 1];
    if (p[0] !== last[0] || p[1] !== last[1]) stroke.points.push(p);
    if (stroke.points.length === 1) stroke.points.push([...stroke.points[0]]); // a dot
    // Long strokes go as several, each within the server's point limit, joined end to start.
    for (let start = 0; start < stroke.points.length - 1; start += MAX_POINTS - 1) {
      this.send({ ...stroke, points: stroke.points.slice(start, start + MAX_POINTS) });
    }
  }

  async send(stroke) {
    this.pending.push(stroke);
    this.drawStroke(stroke);
    try {
      const reply = await this.session.request("wb_stroke", {
        color: stroke.color, width: stroke.width, points: stroke.points,
      });
      const me = this.session.me();
      if (reply && reply.stroke_id > this.clearedSeq && !this.strokes.has(reply.stroke_id)) {
        this.strokes.set(reply.stroke_id, { ...stroke, stroke_id: reply.stroke_id, by: me ? me.participant_id : "" });
      }
      this.status.textContent = "";
    } catch (error) {
      this.status.textContent = failure(error, "draw");
    } finally {
      this.pending = this.pending.filter((s) => s !== stroke);
      this.redraw();
    }
  }
}
