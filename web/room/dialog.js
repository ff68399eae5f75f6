// Questions in the page's own <dialog> (modal, focus trapped and restored by the browser):
// a yes/no confirmation, or a choice between a few actions with an optional field or note
// above the buttons (leave or end for all; remove, or remove and let back in later).

import { el } from "/room/icons.js";

const $ = (id) => document.getElementById(id);

// choices: [{value, label, kind = "secondary", description?}]; extra: an element shown above
// the buttons (a picker), or null. Resolves with the chosen value, or null for Cancel/Escape.
export function choose({ title, text, choices, extra = null, cancel = "Cancel" }) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  const slot = $("confirm-extra");
  slot.replaceChildren(...(extra ? [extra] : []));
  slot.hidden = !extra;
  const notes = choices.filter((c) => c.description).map((c) => el("li", {},
    el("strong", { text: `${c.label}: ` }), c.description));
  const explained = $("confirm-notes");
  explained.replaceChildren(...notes);
  explained.hidden = notes.length === 0;
  $("confirm-buttons").replaceChildren(
    el("button", { type: "submit", value: "cancel", class: "secondary" }, cancel),
    ...choices.map((c) => el("button", { type: "submit", value: c.value, class: c.kind || "secondary" }, c.label)));
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const value = dialog.returnValue;
      resolve(value && value !== "cancel" ? value : null);
    }, { once: true });
    dialog.showModal();
  });
}

export async function confirmAction(title, text, okLabel) {
  return (await choose({ title, text, choices: [{ value: "ok", label: okLabel, kind: "danger" }] })) === "ok";
}
