// Polls panel: moderators create and close polls; everyone votes once and sees live results
// (bars with the count and percentage as text). See docs/signaling.md for the protocol.
//
// A poll carries `version`, raised on every change: the panel keeps the highest version it has
// seen, so two votes' events crossing on the wire never show older counts.

import { failure, h, percent, uid } from "./dom.js";

const MAX_OPTIONS = 10;
const MIN_OPTIONS = 2;

export class PollsPanel {
  constructor(root, session) {
    this.root = root;
    this.session = session;
    this.polls = new Map(); // poll_id -> poll
    this.mine = new Map(); // poll_id -> my choices
    this.views = new Map(); // poll_id -> {article, ...parts}
    this.unseen = 0;
    this.shown = false;
    this.build();
  }

  // -- the room's interface -------------------------------------------------------------------

  load(snapshot) {
    this.polls.clear();
    this.mine.clear();
    for (const view of this.views.values()) view.article.remove();
    this.views.clear();
    for (const poll of snapshot.polls || []) {
      this.polls.set(poll.poll_id, poll);
      if (poll.my_choices) this.mine.set(poll.poll_id, poll.my_choices);
    }
    this.render();
  }

  handle(event) {
    if (!event || event.type !== "event") return;
    const poll = event.data && event.data.poll;
    switch (event.event) {
      case "poll.created":
        if (this.accept(poll)) {
          if (!this.shown) this.unseen += 1;
          this.session.announce(`New poll: ${poll.question}`);
        }
        break;
      case "poll.updated":
        this.accept(poll);
        break;
      case "poll.closed":
        if (this.accept(poll)) this.session.announce(`Poll closed: ${poll.question}`);
        break;
      case "participant.updated":
      case "you.admitted":
        break; // a role change may show or hide the moderator's tools
      default:
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

  accept(poll) {
    if (!poll || !poll.poll_id) return false;
    const held = this.polls.get(poll.poll_id);
    if (held && held.version >= poll.version) return false;
    this.polls.set(poll.poll_id, { ...poll, my_choices: undefined });
    return true;
  }

  // -- rendering ------------------------------------------------------------------------------

  build() {
    this.root.classList.add("collab-panel", "polls-panel");
    const heading = h("h2", { class: "collab-heading", text: "Polls" });
    this.form = this.buildForm();
    this.list = h("ol", { class: "poll-list", "aria-label": "Polls" });
    this.empty = h("p", { class: "collab-empty muted", text: "No polls yet." });
    this.root.replaceChildren(heading, this.form, this.empty, this.list);
  }

  buildForm() {
    const questionId = uid("poll-question");
    const status = h("p", { class: "collab-error", role: "alert" });
    const question = h("input", {
      id: questionId, name: "question", maxlength: 300, required: true, autocomplete: "off",
      "data-focus-key": "poll-question",
    });
    const options = h("ol", { class: "poll-option-inputs" });
    const addButton = h("button", { type: "button", class: "secondary small", text: "Add option" });
    const multiple = h("input", { type: "checkbox", name: "multiple", id: uid("poll-multiple") });
    const submit = h("button", { type: "submit", class: "primary", text: "Start poll" });
    const form = h(
      "form",
      { class: "poll-form collab-card stack-sm", "aria-label": "New poll", novalidate: true },
      h("h3", { text: "New poll" }),
      h("label", { for: questionId, text: "Question" }),
      question,
      h("fieldset", { class: "poll-options-field" }, h("legend", { text: "Options" }), options, addButton),
      h("label", { class: "check", for: multiple.id }, multiple, "Allow more than one answer"),
      submit,
      status,
    );
    const addOption = (value = "") => {
      const n = options.children.length + 1;
      const inputId = uid("poll-option");
      const input = h("input", { id: inputId, maxlength: 100, value, autocomplete: "off" });
      const remove = h("button", {
        type: "button", class: "ghost small", text: "Remove", "aria-label": `Remove option number ${n}`,
      });
      const row = h("li", { class: "poll-option-input row" },
        h("label", { for: inputId, class: "visually-hidden", text: `Option ${n}` }), input, remove);
      remove.addEventListener("click", () => {
        if (options.children.length <= MIN_OPTIONS) return;
        row.remove();
        renumber();
        options.querySelector("input")?.focus();
      });
      options.append(row);
      renumber();
      return input;
    };
    const renumber = () => {
      [...options.children].forEach((row, i) => {
        row.querySelector("label").textContent = `Option ${i + 1}`;
        row.querySelector("button").setAttribute("aria-label", `Remove option number ${i + 1}`);
        row.querySelector("button").disabled = options.children.length <= MIN_OPTIONS;
      });
      addButton.disabled = options.children.length >= MAX_OPTIONS;
    };
    addButton.addEventListener("click", () => addOption().focus());
    addOption();
    addOption();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      status.textContent = "";
      const text = question.value.trim();
      const values = [...options.querySelectorAll("input")].map((i) => i.value.trim()).filter(Boolean);
      if (!text) { status.textContent = "Write a question."; question.focus(); return; }
      if (values.length < MIN_OPTIONS) { status.textContent = "Give at least two options."; return; }
      if (new Set(values).size !== values.length) { status.textContent = "Options must all differ."; return; }
      submit.disabled = true;
      try {
        const reply = await this.session.request("poll_create", {
          question: text, options: values, multiple: multiple.checked,
        });
        if (reply && reply.poll) { this.accept(reply.poll); this.render(); }
        question.value = "";
        multiple.checked = false;
        options.replaceChildren();
        addOption();
        addOption();
        this.session.announce("Poll created.");
      } catch (error) {
        status.textContent = failure(error, "create the poll");
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  render() {
    this.form.hidden = !this.session.isModerator();
    const polls = [...this.polls.values()].sort((a, b) => b.created_at - a.created_at);
    this.empty.hidden = polls.length > 0;
    polls.forEach((poll, index) => {
      const view = this.views.get(poll.poll_id) || this.buildPoll(poll);
      this.update(view, poll);
      if (this.list.children[index] !== view.article) this.list.insertBefore(view.article, this.list.children[index] || null);
    });
  }

  buildPoll(poll) {
    const titleId = uid("poll-title");
    const article = h("li", { class: "poll collab-card", "aria-labelledby": titleId, "data-poll-id": poll.poll_id });
    const title = h("h3", { id: titleId, class: "poll-question", text: poll.question });
    const state = h("p", { class: "poll-state muted small" });
    const results = h("ul", { class: "poll-results", "aria-label": "Results" });
    const status = h("p", { class: "collab-error", role: "alert" });
    const kind = poll.multiple ? "checkbox" : "radio";
    const group = uid("poll-choice");
    const inputs = poll.options.map((option, i) => {
      const id = `${group}-${i}`;
      const input = h("input", { type: kind, name: group, id, value: String(i) });
      return { input, row: h("li", {}, h("label", { class: "check", for: id }, input, option)) };
    });
    const voteButton = h("button", { type: "submit", class: "primary small", text: "Vote" });
    const voteForm = h(
      "form",
      { class: "poll-vote stack-sm" },
      h("fieldset", {},
        h("legend", { text: poll.multiple ? "Choose one or more" : "Choose one" }),
        h("ul", { class: "poll-choices" }, inputs.map((x) => x.row))),
      voteButton,
    );
    voteForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      status.textContent = "";
      const choices = inputs.filter((x) => x.input.checked).map((x) => Number(x.input.value));
      if (!choices.length) { status.textContent = "Choose an option first."; return; }
      voteButton.disabled = true;
      try {
        const reply = await this.session.request("poll_vote", { poll_id: poll.poll_id, choices });
        this.mine.set(poll.poll_id, choices);
        if (reply && reply.poll) this.accept(reply.poll);
        this.render();
        this.session.announce("Vote sent.");
      } catch (error) {
        if (error && error.code === "conflict") this.mine.set(poll.poll_id, this.mine.get(poll.poll_id) || []);
        status.textContent = failure(error, "vote");
        this.render();
      } finally {
        voteButton.disabled = false;
      }
    });
    const closeButton = h("button", { type: "button", class: "secondary small", text: "Close poll" });
    closeButton.addEventListener("click", async () => {
      status.textContent = "";
      closeButton.disabled = true;
      try {
        const reply = await this.session.request("poll_close", { poll_id: poll.poll_id });
        if (reply && reply.poll) this.accept(reply.poll);
        this.render();
      } catch (error) {
        status.textContent = failure(error, "close the poll");
      } finally {
        closeButton.disabled = false;
      }
    });
    const yours = h("p", { class: "poll-yours small" });
    article.append(title, state, voteForm, yours, results, closeButton, status);
    const view = { article, state, results, voteForm, yours, closeButton };
    this.views.set(poll.poll_id, view);
    return view;
  }

  update(view, poll) {
    const open = poll.status === "open";
    const mine = this.mine.get(poll.poll_id);
    const voters = poll.voters || 0;
    view.state.textContent = `${open ? "Open" : "Closed"} · ${voters} ${voters === 1 ? "voter" : "voters"}`
      + (poll.multiple ? " · several answers allowed" : "");
    view.voteForm.hidden = !open || mine !== undefined;
    view.closeButton.hidden = !open || !this.session.isModerator();
    view.yours.hidden = !(mine && mine.length);
    view.yours.textContent = mine && mine.length
      ? `You voted: ${mine.map((i) => poll.options[i]).join(", ")}` : "";
    const total = voters;
    const rows = poll.options.map((option, i) => {
      const count = (poll.counts && poll.counts[i]) || 0;
      const pct = percent(count, total);
      const bar = h("span", { class: "poll-bar-fill" });
      bar.style.width = `${pct}%`; // CSSOM, not an inline style attribute (CSP allows it)
      return h("li", { class: "poll-result" },
        h("span", { class: "poll-result-label" },
          h("span", { class: "poll-option", text: option }),
          h("span", { class: "poll-count", text: `${count} ${count === 1 ? "vote" : "votes"}, ${pct}%` })),
        h("span", { class: "poll-bar", "aria-hidden": "true" }, bar));
    });
    view.results.replaceChildren(...rows);
  }
}
