// Q&A panel: ask, upvote (once, never your own question), and for moderators answer or dismiss.
// Questions are shown by votes (most first), then by age. Each carries `version`, raised on
// every change; the panel keeps the highest version it has seen.

import { failure, h, keepFocus, uid } from "./dom.js";

const MAX_CHARS = 1000;

export class QaPanel {
  constructor(root, session) {
    this.root = root;
    this.session = session;
    this.questions = new Map(); // question_id -> question
    this.views = new Map(); // question_id -> view
    this.upvoted = new Set(this.restoreUpvotes());
    this.unseen = 0;
    this.shown = false;
    this.build();
  }

  // -- the room's interface -------------------------------------------------------------------

  load(snapshot) {
    this.questions.clear();
    for (const view of this.views.values()) view.item.remove();
    this.views.clear();
    this.upvoted = new Set(this.restoreUpvotes());
    for (const q of snapshot.questions || []) this.questions.set(q.question_id, q);
    this.render();
  }

  handle(event) {
    if (!event || event.type !== "event") return;
    const q = event.data && event.data.question;
    if (event.event === "qa.asked") {
      if (this.accept(q)) {
        const me = this.session.me();
        if (!me || q.asked_by !== me.participant_id) {
          if (!this.shown) this.unseen += 1;
          this.session.announce(`New question from ${q.asked_by_name}`);
        }
      }
    } else if (event.event === "qa.updated") {
      const before = q && this.questions.get(q.question_id);
      if (this.accept(q) && before && before.status !== q.status && q.status === "answered") {
        this.session.announce(`Question answered: ${q.text}`);
      }
    } else if (event.event !== "participant.updated") {
      return;
    }
    this.render();
  }

  get unread() {
    return this.unseen;
  }

  set visible(value) {
    this.shown = Boolean(value);
    if (this.shown) this.unseen = 0;
  }

  // -- state ----------------------------------------------------------------------------------

  accept(q) {
    if (!q || !q.question_id) return false;
    const held = this.questions.get(q.question_id);
    if (held && held.version >= q.version) return false;
    this.questions.set(q.question_id, q);
    return true;
  }

  // Which questions this participant upvoted survives a reload of the tab (the server refuses
  // a second upvote anyway; this only keeps the button's pressed state right).
  storageKey() {
    const me = this.session.me();
    return me ? `townhall.upvoted.${me.participant_id}` : null;
  }

  restoreUpvotes() {
    try {
      const key = this.storageKey();
      return key ? JSON.parse(sessionStorage.getItem(key) || "[]") : [];
    } catch { return []; }
  }

  saveUpvotes() {
    try {
      const key = this.storageKey();
      if (key) sessionStorage.setItem(key, JSON.stringify([...this.upvoted]));
    } catch { /* storage may be off: the pressed state lasts for this page only */ }
  }

  // -- rendering ------------------------------------------------------------------------------

  build() {
    this.root.classList.add("collab-panel", "qa-panel");
    const textId = uid("qa-text");
    const counterId = uid("qa-count");
    this.text = h("textarea", {
      id: textId, rows: 3, maxlength: MAX_CHARS, "aria-describedby": counterId, "data-focus-key": "qa-text",
    });
    const counter = h("p", { id: counterId, class: "hint", text: `Up to ${MAX_CHARS} characters.` });
    this.askStatus = h("p", { class: "collab-error", role: "alert" });
    const submit = h("button", { type: "submit", class: "primary", text: "Ask" });
    const form = h("form", { class: "qa-form collab-card stack-sm", "aria-label": "Ask a question", novalidate: true },
      h("label", { for: textId, text: "Your question" }), this.text, counter, submit, this.askStatus);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      this.askStatus.textContent = "";
      const text = this.text.value.trim();
      if (!text) { this.askStatus.textContent = "Write a question first."; this.text.focus(); return; }
      submit.disabled = true;
      try {
        const reply = await this.session.request("qa_ask", { text });
        if (reply && reply.question) this.accept(reply.question);
        this.text.value = "";
        this.render();
        this.session.announce("Question sent.");
      } catch (error) {
        this.askStatus.textContent = failure(error, "send the question");
      } finally {
        submit.disabled = false;
      }
    });
    this.list = h("ol", { class: "qa-list", "aria-label": "Questions, most votes first" });
    this.empty = h("p", { class: "collab-empty muted", text: "No questions yet." });
    this.root.replaceChildren(h("h2", { class: "collab-heading", text: "Questions and answers" }), form, this.empty, this.list);
  }

  ordered() {
    const moderator = this.session.isModerator();
    return [...this.questions.values()]
      .filter((q) => q.status !== "dismissed" || moderator)
      .sort((a, b) => (b.votes - a.votes) || (a.created_at - b.created_at)
        || a.question_id.localeCompare(b.question_id));
  }

  render() {
    const questions = this.ordered();
    this.empty.hidden = questions.length > 0;
    const keep = new Set(questions.map((q) => q.question_id));
    for (const [id, view] of this.views) {
      if (!keep.has(id)) { view.item.remove(); this.views.delete(id); }
    }
    keepFocus(this.list, () => {
      questions.forEach((q, index) => {
        const view = this.views.get(q.question_id) || this.buildQuestion(q);
        this.update(view, q);
        if (this.list.children[index] !== view.item) this.list.insertBefore(view.item, this.list.children[index] || null);
      });
    });
  }

  buildQuestion(q) {
    const textId = uid("qa-q");
    const item = h("li", { class: "qa-item collab-card", "aria-labelledby": textId, "data-question-id": q.question_id });
    const text = h("p", { id: textId, class: "qa-text", text: q.text });
    const meta = h("p", { class: "qa-meta muted small" });
    const answer = h("p", { class: "qa-answer" });
    const status = h("p", { class: "collab-error", role: "alert" });
    const upvote = h("button", {
      type: "button", class: "qa-upvote secondary small", "aria-pressed": "false",
      "data-focus-key": `up-${q.question_id}`,
    });
    upvote.addEventListener("click", async () => {
      if (this.upvoted.has(q.question_id)) return;
      status.textContent = "";
      upvote.disabled = true;
      try {
        const reply = await this.session.request("qa_upvote", { question_id: q.question_id });
        this.upvoted.add(q.question_id);
        if (reply && reply.question) this.accept(reply.question);
      } catch (error) {
        if (error && error.code === "conflict" && /already/.test(error.message || "")) this.upvoted.add(q.question_id);
        else status.textContent = failure(error, "upvote");
      } finally {
        upvote.disabled = false;
        this.saveUpvotes();
        this.render();
      }
    });
    const answerId = uid("qa-answer");
    const answerText = h("textarea", { id: answerId, rows: 2, maxlength: MAX_CHARS });
    const answerForm = h("form", { class: "qa-answer-form stack-sm", hidden: true },
      h("label", { for: answerId, text: "Answer (optional)" }), answerText,
      h("div", { class: "row" },
        h("button", { type: "submit", class: "primary small", text: "Mark answered" }),
        h("button", { type: "button", class: "ghost small", text: "Cancel", onclick: () => { answerForm.hidden = true; answerButton.focus(); } })));
    const answerButton = h("button", {
      type: "button", class: "secondary small", text: "Answer", "data-focus-key": `ans-${q.question_id}`,
    });
    answerButton.addEventListener("click", () => { answerForm.hidden = false; answerText.focus(); });
    answerForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      status.textContent = "";
      const data = { question_id: q.question_id };
      if (answerText.value.trim()) data.text = answerText.value.trim();
      try {
        const reply = await this.session.request("qa_answer", data);
        if (reply && reply.question) this.accept(reply.question);
        answerForm.hidden = true;
        this.render();
      } catch (error) {
        status.textContent = failure(error, "answer");
      }
    });
    const dismissButton = h("button", {
      type: "button", class: "ghost small", text: "Dismiss", "data-focus-key": `dis-${q.question_id}`,
    });
    dismissButton.addEventListener("click", async () => {
      status.textContent = "";
      try {
        const reply = await this.session.request("qa_dismiss", { question_id: q.question_id });
        if (reply && reply.question) this.accept(reply.question);
        this.render();
      } catch (error) {
        status.textContent = failure(error, "dismiss");
      }
    });
    const tools = h("div", { class: "qa-tools row" }, answerButton, dismissButton);
    item.append(h("div", { class: "qa-row" }, upvote, h("div", { class: "qa-body" }, text, meta, answer)), tools, answerForm, status);
    const view = { item, meta, answer, upvote, tools, answerButton, dismissButton };
    this.views.set(q.question_id, view);
    return view;
  }

  update(view, q) {
    const me = this.session.me();
    const own = Boolean(me && q.asked_by === me.participant_id);
    const pressed = this.upvoted.has(q.question_id);
    const votes = q.votes || 0;
    view.upvote.textContent = `▲ ${votes}`;
    view.upvote.setAttribute("aria-pressed", String(pressed));
    view.upvote.setAttribute("aria-label", `Upvote, ${votes} ${votes === 1 ? "vote" : "votes"}${own ? " (your question)" : ""}`);
    view.upvote.disabled = own || q.status === "dismissed";
    const state = { open: "", answered: " · answered", dismissed: " · dismissed" }[q.status] || "";
    view.meta.textContent = `${own ? "You" : q.asked_by_name}${state}`;
    view.answer.hidden = !q.answer;
    view.answer.textContent = q.answer ? `Answer: ${q.answer}` : "";
    view.item.dataset.status = q.status;
    const moderator = this.session.isModerator();
    view.tools.hidden = !moderator || q.status === "dismissed";
    view.answerButton.textContent = q.status === "answered" ? "Edit answer" : "Answer";
  }
}
