// The organisation page (organisation.html), reached from the dashboard's header: the
// organisation's name and members with their roles, its API keys and its webhook
// subscriptions (docs/partners.md). A webhook's signing secret is shown once like a key's;
// each subscription opens its delivery log, with replay for what failed.
// Owners and admins list, create and revoke keys; a new key's secret is shown once, in a
// modal dialog, and dropped from the page when the dialog closes. Members, who may not manage
// keys (the API answers 403), get a sentence saying whom to ask instead of controls.
// Signed-in only: without a session it sends the person to sign in and back.
import { account, api, ApiError } from "/api.js";
import { requireSignIn } from "/signed-in.js";

const $ = (id) => document.getElementById(id);

// The scopes a key can hold, as the API names them (townhall.model.organisation.SCOPES), each
// with what it lets an app do, in the words a person choosing them needs.
const SCOPES = [
  ["meetings:read", "See the organisation's meetings and their registrants."],
  ["meetings:write", "Schedule, edit and delete meetings, make join links, end a live session."],
  ["sessions:read", "Read past sessions and their summaries: attendance, chat, polls, Q&A."],
  ["recordings:read", "List recordings (there are none yet)."],
  ["webhooks:read", "See webhook subscriptions and their delivery logs."],
  ["webhooks:write", "Create, change, rotate and delete webhook subscriptions; replay deliveries."],
];
const MANAGERS = new Set(["owner", "admin"]); // the roles that may manage keys
const ROLE_NAMES = { owner: "Owner", admin: "Admin", member: "Member" };
const PAGE = 50; // keys and members a page asks for (the API allows up to 100)
const MAX_RATE = 100; // as the API (townhall.auth.api_keys.MAX_RATE_PER_SECOND)

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
// Deliveries and their attempts happen seconds apart: their times show the seconds.
const preciseTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

function toast(message, kind = "info") {
  const item = document.createElement("div");
  item.className = `toast toast-${kind}`;
  item.textContent = message;
  $("toasts").append(item);
  setTimeout(() => item.remove(), 5000);
}

function toSignIn() {
  location.replace(`/signin.html?next=${encodeURIComponent("/organisation.html")}`);
}

/** The message to show for a failed call; a lapsed session goes to sign in instead. */
function failure(error, doing) {
  if (error instanceof ApiError && error.status === 401) toSignIn();
  if (error instanceof ApiError && error.status === 0) return `Could not ${doing}: Townhall can't be reached. Check your connection and try again.`;
  return `Could not ${doing}: ${error.message}`;
}

/** A <time> showing `iso` in the viewer's zone and format. */
function timeOf(iso, format = dateTime) {
  const time = document.createElement("time");
  time.dateTime = iso;
  time.textContent = format.format(new Date(iso));
  return time;
}

/** Fetch every page of a list in turn, `render` each; the "more" button asks for the next. */
function pager(path, moreButton, render) {
  let cursor = null;
  async function next() {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (cursor) query.set("cursor", cursor);
    const page = await api(`${path}?${query}`);
    cursor = page.next_cursor;
    moreButton.hidden = !cursor;
    render(page.items);
    return page.items;
  }
  moreButton.addEventListener("click", async () => {
    moreButton.disabled = true;
    try { await next(); } catch (error) { toast(failure(error, "load more"), "error"); }
    moreButton.disabled = false;
  });
  return next;
}

// -- the organisation and its members -------------------------------------------------------

let me = null; // {user_id, email, name}
const managers = []; // owners and admins seen so far: whom a member asks for a key

function renderMembers(items) {
  const list = $("member-list");
  for (const member of items) {
    const li = document.createElement("li");
    li.className = "member";
    const who = document.createElement("div");
    const name = document.createElement("strong");
    name.textContent = member.name + (me && member.user_id === me.user_id ? " (you)" : "");
    const email = document.createElement("span");
    email.className = "muted small";
    email.textContent = member.email;
    who.append(name, email);
    const role = document.createElement("span");
    role.className = member.role === "member" ? "badge" : "badge badge-accent";
    role.textContent = ROLE_NAMES[member.role] || member.role;
    li.append(who, role);
    list.append(li);
    if (MANAGERS.has(member.role)) managers.push(member);
  }
  const count = list.children.length;
  $("members-status").textContent = `${count}${$("members-more").hidden ? "" : "+"} ${count === 1 ? "member" : "members"}`;
}

/** For a member: who manages the keys, named, instead of controls they may not use. */
function explainReadOnly() {
  const names = managers.slice(0, 3).map((m) => `${m.name} (${m.email})`);
  const whom = names.length
    ? new Intl.ListFormat(undefined, { type: "disjunction" }).format(names)
    : "an owner or admin";
  $("keys-readonly").textContent = `Only owners and admins of the organisation create, see and revoke API keys. Ask ${whom} if an app needs one.`;
  $("keys-readonly").hidden = false;
  $("hooks-readonly").textContent = `Only owners and admins of the organisation add, change and delete webhooks and see their deliveries. Ask ${whom} if an app needs to hear about events.`;
  $("hooks-readonly").hidden = false;
}

// -- API keys -------------------------------------------------------------------------------

let keyCount = 0;

function keyStatus() {
  const live = [...document.querySelectorAll(".api-key")].filter((c) => !c.classList.contains("revoked")).length;
  $("keys-status").textContent = keyCount
    ? `${live} active ${live === 1 ? "key" : "keys"}${keyCount > live ? `, ${keyCount - live} revoked` : ""}`
    : "No keys yet. Create one below when an app needs to use the API.";
  $("keys-status").className = keyCount ? "muted small" : "empty";
}

function showRevoked(card, key) {
  card.classList.add("revoked");
  const state = card.querySelector(".key-state");
  state.textContent = "Revoked";
  state.title = `Revoked ${dateTime.format(new Date(key.revoked_at))}`;
  card.querySelector(".key-actions").hidden = true;
  card.querySelector(".confirm-delete").hidden = true;
  const used = card.querySelector(".key-used");
  const revoked = document.createElement("div");
  const dt = document.createElement("dt");
  dt.textContent = "Revoked";
  const dd = document.createElement("dd");
  dd.append(timeOf(key.revoked_at));
  revoked.append(dt, dd);
  used.parentElement.after(revoked);
}

async function revoke(card, key) {
  const button = card.querySelector(".confirm");
  button.disabled = true;
  card.querySelector(".revoke-error").textContent = "";
  try {
    await api(`/api/v1/keys/${encodeURIComponent(key.key_id)}`, { method: "DELETE" });
    showRevoked(card, { ...key, revoked_at: new Date().toISOString() });
    keyStatus();
    card.querySelector(".key-name").focus();
    toast(`Revoked “${key.name}”: apps using it are refused from now on`, "success");
  } catch (error) {
    card.querySelector(".revoke-error").textContent = failure(error, "revoke the key");
  } finally {
    button.disabled = false;
  }
}

function renderKey(key) {
  const card = $("key-template").content.firstElementChild.cloneNode(true);
  card.dataset.keyId = key.key_id;
  const nameId = `key-${key.key_id}-name`;
  card.setAttribute("aria-labelledby", nameId);
  const name = card.querySelector(".key-name");
  name.id = nameId;
  name.textContent = key.name;
  name.tabIndex = -1; // focus lands here after creating or revoking
  card.querySelector(".key-state").textContent = "Active";
  card.querySelector(".key-prefix").textContent = `${key.prefix}_…`; // the secret is never shown again
  card.querySelector(".key-scope-list").replaceChildren(...key.scopes.map((scope) => {
    const code = document.createElement("code");
    code.className = "scope-name";
    code.textContent = scope;
    return code;
  }));
  card.querySelector(".key-created").append(timeOf(key.created_at));
  const used = card.querySelector(".key-used");
  if (key.last_used_at) used.append(timeOf(key.last_used_at));
  else used.textContent = "Never";

  const confirm = card.querySelector(".confirm-delete");
  const open = card.querySelector(".revoke");
  open.setAttribute("aria-describedby", nameId);
  confirm.querySelector(".confirm-text").textContent =
    `Revoke “${key.name}”? Apps that use it are refused from their next request. This cannot be undone.`;
  open.addEventListener("click", () => {
    confirm.hidden = false;
    confirm.querySelector(".cancel").focus();
  });
  confirm.querySelector(".cancel").addEventListener("click", () => {
    confirm.hidden = true;
    card.querySelector(".revoke-error").textContent = "";
    open.focus();
  });
  confirm.querySelector(".confirm").addEventListener("click", () => revoke(card, key));
  if (key.revoked_at) showRevoked(card, key);
  return card;
}

function addKeys(items) {
  $("key-list").append(...items.map(renderKey));
  keyCount += items.length;
  keyStatus();
}

// -- creating a key -------------------------------------------------------------------------

/** A checkbox per [value, explanation] in `box` (a fieldset), each described by its text. */
function fillChecks(box, entries, name) {
  for (const [value, text] of entries) {
    const id = `${name}-${value.replace(/[:.]/g, "-")}`;
    const row = document.createElement("div");
    row.className = "scope";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = name;
    input.value = value;
    input.id = id;
    input.setAttribute("aria-describedby", `${id}-hint`);
    const label = document.createElement("label");
    label.htmlFor = id;
    const code = document.createElement("code");
    code.textContent = value;
    label.append(code);
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.id = `${id}-hint`;
    hint.textContent = text;
    row.append(input, label, hint);
    box.append(row);
  }
}

/** Mark each [field, bad, message] check's field and focus the first bad one: its message,
 *  or "" when all are fine. A field may appear in several checks (bad if any is). */
function problemOf(checks) {
  let message = "";
  const bad = new Map();
  for (const [field, wrong, text] of checks) {
    bad.set(field, bad.get(field) || wrong);
    if (wrong && !message) {
      message = text;
      (field.querySelector("input") || field).focus();
    }
  }
  for (const [field, wrong] of bad) {
    // A fieldset of checkboxes is marked by its boxes (a group takes no aria-invalid).
    const marked = field.tagName === "FIELDSET" ? [...field.querySelectorAll("input")] : [field];
    for (const input of marked) input.setAttribute("aria-invalid", wrong ? "true" : "false");
    field.classList.toggle("invalid", wrong);
  }
  return message;
}

/** A form sent: back to empty, and unmarked. */
function resetForm(form) {
  form.reset();
  for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
  for (const field of form.querySelectorAll(".invalid")) field.classList.remove("invalid");
}

/** Why the form cannot be sent (and the field marked and focused), or "". */
function keyFormProblem(name, scopes, rate) {
  return problemOf([
    [$("key-name"), !name, "Give the key a name, such as the app that will use it."],
    [$("key-scopes"), !scopes.length, "Choose at least one scope."],
    [$("key-rate"), !(Number.isInteger(rate) && rate >= 1 && rate <= MAX_RATE), `Requests per second: a whole number from 1 to ${MAX_RATE}.`],
  ]);
}

async function createKey(event) {
  event.preventDefault();
  const form = $("key-form");
  const name = $("key-name").value.trim();
  const scopes = [...form.querySelectorAll("input[name=scope]:checked")].map((i) => i.value);
  const rate = Number($("key-rate").value);
  const problem = keyFormProblem(name, scopes, rate);
  $("key-error").textContent = problem;
  if (problem) return;
  const button = $("key-submit");
  button.disabled = true;
  button.textContent = "Creating…";
  try {
    const created = await api("/api/v1/keys", {
      method: "POST", body: { name, scopes, rate_per_second: rate },
    });
    const { key: secret, ...key } = created;
    addKeys([key]);
    resetForm(form);
    showSecret({
      title: "Your new API key",
      why: "Townhall keeps only a hash of it. If you lose it, revoke it and create another.",
      label: `API key “${key.name}”`,
      secret,
      back: () => keyCard(key.key_id)?.querySelector(".key-name") || $("key-name"),
    });
  } catch (error) {
    $("key-error").textContent = failure(error, "create the key");
    if (error instanceof ApiError && error.status === 0) {
      // The key may have been made with the answer lost: list what exists, so it shows.
      $("key-error").textContent += " If the key is in the list, revoke it and create another.";
    }
    $("key-name").focus();
  } finally {
    button.disabled = false;
    button.textContent = "Create key";
  }
}

// -- a secret, shown once (a new key; a webhook's signing secret) ---------------------------

let backFrom = null; // where the focus goes when the dialog closes (the new key's card, ...)
const keyCard = (id) => document.querySelector(`[data-key-id="${CSS.escape(id)}"]`);

/** The secret in the modal dialog; `back()` names the element to focus when it closes. */
function showSecret({ title, why, label, secret, back }) {
  backFrom = back;
  $("key-dialog-title").textContent = title;
  $("key-dialog-why").textContent = why;
  $("key-dialog-label").textContent = label;
  $("key-secret").value = secret;
  $("key-copy-status").textContent = "";
  $("key-copy").textContent = "Copy";
  $("key-dialog").showModal();
  $("key-secret").focus();
  $("key-secret").select();
}

async function copySecret() {
  const input = $("key-secret");
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
    await navigator.clipboard.writeText(input.value);
    $("key-copy").textContent = "Copied ✓";
    $("key-copy-status").textContent = "Copied to the clipboard. Paste it where the app keeps its secrets.";
  } catch {
    // No clipboard here (plain http, or permission refused): select it for Ctrl+C.
    input.focus();
    input.select();
    $("key-copy-status").textContent = "Selected: press Ctrl+C (⌘C on a Mac) to copy it.";
  }
}

function closedSecret() {
  // The secret leaves the page with the dialog: nothing keeps a copy.
  $("key-secret").value = "";
  $("key-copy-status").textContent = "";
  const target = backFrom && backFrom();
  backFrom = null;
  if (target) {
    target.closest("li")?.scrollIntoView({ block: "nearest" });
    target.focus();
  }
}

// -- webhooks -------------------------------------------------------------------------------

// The event types a subscription may take, as the API names them
// (townhall.model.webhook.EVENT_TYPES; docs/partners.md#webhooks), each with when it is sent.
const EVENT_TYPES = [
  ["session.started", "A session of a meeting starts."],
  ["session.ended", "A session ends (the host ended it, or an app through the API)."],
  ["participant.joined", "Someone is admitted to a session."],
  ["participant.left", "Someone leaves, drops out for good or is removed (with the reason)."],
  ["poll.closed", "A poll closes, with its final counts."],
  ["question.answered", "A question in Q&A is answered."],
  ["webhook.disabled", "Another of these subscriptions was turned off for failing a whole day."],
];
const MAX_HOOKS = 20; // as the API (townhall.store.webhooks.MAX_SUBSCRIPTIONS)
const ROTATION_HOURS = 24; // as the API (townhall.webhooks.subscriptions.ROTATION_OVERLAP_SECONDS)
const LOG_PAGE = 20; // deliveries a page of the log shows
const LOG_POLL_MS = 2000; // while a delivery is being sent or retried, the open log refreshes
const HAND = "disabled by hand"; // the API's reason when someone turned it off

const hooks = new Map(); // subscription_id -> the subscription as the API last answered

const hookPath = (hook) => `/api/v1/webhooks/${encodeURIComponent(hook.subscription_id)}`;
const hookCard = (id) => document.querySelector(`[data-hook-id="${CSS.escape(id)}"]`);

function hooksStatus() {
  const count = hooks.size;
  const off = [...hooks.values()].filter((h) => !h.enabled).length;
  $("hooks-status").textContent = count
    ? `${count} ${count === 1 ? "subscription" : "subscriptions"}${off ? `, ${off} turned off` : ""}${count >= MAX_HOOKS ? ` (the most an organisation may have: delete one to add another)` : ""}`
    : "No webhooks yet. Add one below when an app needs to hear about events as they happen.";
  $("hooks-status").className = count ? "muted small" : "empty";
  $("hook-submit").disabled = count >= MAX_HOOKS;
}

function codes(names) {
  return names.map((name) => {
    const code = document.createElement("code");
    code.className = "scope-name";
    code.textContent = name;
    return code;
  });
}

/** Fill a card's facts, state and buttons from the subscription (again after each change). */
function fillHook(card, hook) {
  hooks.set(hook.subscription_id, hook);
  card.classList.toggle("revoked", !hook.enabled);
  card.querySelector(".hook-url").textContent = hook.url;
  card.querySelector(".hook-state").textContent = hook.enabled ? "On" : "Off";
  const description = card.querySelector(".hook-description");
  description.textContent = hook.description;
  description.hidden = !hook.description;
  const disabled = card.querySelector(".hook-disabled");
  disabled.hidden = hook.enabled;
  if (!hook.enabled) {
    const when = hook.disabled_at ? dateTime.format(new Date(hook.disabled_at)) : "";
    disabled.textContent = hook.disabled_reason === HAND || !hook.disabled_reason
      ? `Turned off by hand${when ? ` on ${when}` : ""}: nothing is sent until it is turned on again.`
      : `Turned off by Townhall${when ? ` on ${when}` : ""}: ${hook.disabled_reason}. Fix the app's endpoint, turn it on, then replay the failed deliveries from the log.`;
  }
  card.querySelector(".hook-types").replaceChildren(...codes(hook.event_types));
  card.querySelector(".hook-created").replaceChildren(timeOf(hook.created_at));
  const success = card.querySelector(".hook-success");
  if (hook.last_success_at) success.replaceChildren(timeOf(hook.last_success_at));
  else success.textContent = "Never";
  const current = hook.secrets.find((x) => !x.expires_at);
  const parting = hook.secrets.filter((x) => x.expires_at && new Date(x.expires_at) > new Date());
  const secrets = card.querySelector(".hook-secrets");
  secrets.replaceChildren(current ? `Since ${dateTime.format(new Date(current.created_at))}` : "");
  if (parting.length) {
    const until = new Date(Math.max(...parting.map((x) => new Date(x.expires_at))));
    const old = document.createElement("span");
    old.textContent = `(the previous one also signs until ${dateTime.format(until)})`;
    secrets.append(old);
  }
  card.querySelector(".toggle").textContent = hook.enabled ? "Turn off" : "Turn on";
  const log = card.querySelector(".hook-log");
  log.classList.toggle("hook-off", !hook.enabled);
}

async function toggleHook(card) {
  const hook = hooks.get(card.dataset.hookId);
  const button = card.querySelector(".toggle");
  const error = card.querySelector(".action-error");
  button.disabled = true;
  error.textContent = "";
  const enabled = !hook.enabled;
  try {
    const changed = await api(hookPath(hook), {
      method: "PUT",
      body: { url: hook.url, event_types: hook.event_types, description: hook.description, enabled },
    });
    fillHook(card, changed);
    hooksStatus();
    toast(enabled
      ? "Turned on: new events are sent again. Replay what failed from the delivery log."
      : "Turned off: nothing is sent to it until you turn it on.", "success");
    if (!card.querySelector(".hook-log").hidden) loadLog(card);
  } catch (failed) {
    error.textContent = failure(failed, enabled ? "turn it on" : "turn it off");
  } finally {
    button.disabled = false;
    button.focus();
  }
}

async function rotateHook(card) {
  const hook = hooks.get(card.dataset.hookId);
  const confirm = card.querySelector(".confirm-rotate");
  const button = confirm.querySelector(".confirm");
  const error = card.querySelector(".action-error");
  button.disabled = true;
  error.textContent = "";
  try {
    const { secret } = await api(`${hookPath(hook)}/rotate-secret`, { method: "POST" });
    confirm.hidden = true;
    // The secrets' times changed: read them (the secret is in hand, a failure here is minor).
    api(hookPath(hook)).then((fresh) => fillHook(card, fresh)).catch(() => {});
    showHookSecret(hook, secret, true);
  } catch (failed) {
    error.textContent = failure(failed, "rotate the secret");
  } finally {
    button.disabled = false;
  }
}

async function deleteHook(card) {
  const hook = hooks.get(card.dataset.hookId);
  const confirm = card.querySelector(".confirm-remove");
  const button = confirm.querySelector(".confirm");
  const error = card.querySelector(".action-error");
  button.disabled = true;
  error.textContent = "";
  try {
    await api(hookPath(hook), { method: "DELETE" });
    stopLog(card);
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    hooks.delete(hook.subscription_id);
    hooksStatus();
    if (next) next.querySelector(".hook-url").focus();
    else $("hook-url").focus();
    toast(`Deleted the subscription to ${hook.url}: nothing more is sent to it`, "success");
  } catch (failed) {
    error.textContent = failure(failed, "delete the subscription");
    button.disabled = false;
  }
}

/** A confirmation under the card's buttons: `open` shows it, its cancel button hides it. */
function confirming(card, open, panel, text, act) {
  panel.querySelector(".confirm-text").textContent = text;
  open.addEventListener("click", () => {
    for (const other of card.querySelectorAll(".confirm-delete")) other.hidden = other !== panel;
    panel.hidden = false;
    panel.querySelector(".cancel").focus();
  });
  panel.querySelector(".cancel").addEventListener("click", () => {
    panel.hidden = true;
    card.querySelector(".action-error").textContent = "";
    open.focus();
  });
  panel.querySelector(".confirm").addEventListener("click", () => act(card));
}

function renderHook(hook) {
  const card = $("hook-template").content.firstElementChild.cloneNode(true);
  const id = hook.subscription_id;
  card.dataset.hookId = id;
  const urlId = `hook-${id}-url`;
  card.setAttribute("aria-labelledby", urlId);
  const url = card.querySelector(".hook-url");
  url.id = urlId;
  url.tabIndex = -1; // focus lands here after creating, rotating or deleting
  fillHook(card, hook);
  for (const button of card.querySelectorAll(".key-actions button")) button.setAttribute("aria-describedby", urlId);

  const log = card.querySelector(".hook-log");
  log.id = `hook-${id}-log`;
  log.setAttribute("aria-labelledby", `hook-${id}-log-title`);
  log.querySelector(".log-title").id = `hook-${id}-log-title`;
  const show = card.querySelector(".show-log");
  show.setAttribute("aria-controls", log.id);
  show.addEventListener("click", () => {
    const opening = log.hidden;
    log.hidden = !opening;
    show.setAttribute("aria-expanded", String(opening));
    show.textContent = opening ? "Hide delivery log" : "Delivery log";
    if (opening) loadLog(card);
    else stopLog(card);
  });
  log.querySelector(".refresh").addEventListener("click", () => loadLog(card));
  log.querySelector(".replay-all").addEventListener("click", () => replayAll(card));
  card.querySelector(".toggle").addEventListener("click", () => toggleHook(card));
  confirming(card, card.querySelector(".rotate"), card.querySelector(".confirm-rotate"),
    `Rotate the signing secret? A new secret signs every delivery from now on. The current one keeps signing alongside it for ${ROTATION_HOURS} hours, so the app keeps working while you give it the new one.`,
    rotateHook);
  confirming(card, card.querySelector(".delete"), card.querySelector(".confirm-remove"),
    `Delete the subscription to ${hook.url}? Nothing more is sent to it, deliveries waiting for a retry are dropped, and its log goes. This cannot be undone.`,
    deleteHook);
  return card;
}

function addHooks(items) {
  $("hook-list").append(...items.map(renderHook));
  hooksStatus();
}

// -- a subscription's delivery log ----------------------------------------------------------

const STATES = {
  succeeded: ["Delivered", "delivery-ok"],
  failed: ["Failed", "delivery-failed"],
};

function attemptsText(delivery) {
  const parts = [];
  if (delivery.attempts) parts.push(`${delivery.attempts} ${delivery.attempts === 1 ? "attempt" : "attempts"}`);
  const last = delivery.attempt_log[delivery.attempt_log.length - 1];
  if (last) parts.push(last.status_code >= 200 && last.status_code < 300 ? `answered ${last.status_code}` : `last: ${last.error || `answered ${last.status_code}`}`);
  if (delivery.replays) parts.push(`replayed ${delivery.replays === 1 ? "once" : `${delivery.replays} times`}`);
  return parts.join(" · ");
}

function renderDelivery(card, delivery) {
  const li = document.createElement("li");
  li.className = "delivery";
  li.dataset.deliveryId = delivery.delivery_id;
  const head = document.createElement("div");
  head.className = "delivery-head";
  head.id = `d-${delivery.delivery_id}`;
  const type = document.createElement("code");
  type.textContent = delivery.event_type;
  const retrying = delivery.status === "pending" && delivery.attempts > 0;
  const [label, kind] = STATES[delivery.status] || (retrying ? ["Retrying", "delivery-retrying"] : ["Sending", "delivery-pending"]);
  const state = document.createElement("span");
  state.className = `badge delivery-state ${kind}`;
  state.textContent = label;
  head.append(type, " ", timeOf(delivery.created_at, preciseTime), " ", state);
  const detail = document.createElement("p");
  detail.className = "muted small delivery-detail";
  detail.textContent = attemptsText(delivery);
  if (retrying && delivery.next_attempt_at) {
    detail.append(` · next attempt ${preciseTime.format(new Date(delivery.next_attempt_at))}`);
  }
  li.append(head, detail, deliveryDetails(delivery));
  if (delivery.status === "failed" && hooks.get(card.dataset.hookId)?.enabled) {
    const replay = document.createElement("button");
    replay.type = "button";
    replay.className = "secondary small replay";
    replay.textContent = "Replay";
    replay.setAttribute("aria-describedby", head.id);
    replay.addEventListener("click", () => replayOne(card, delivery, replay));
    li.append(replay);
  }
  return li;
}

/** What a developer checking their receiver needs: the webhook-id, each attempt, the body. */
function deliveryDetails(delivery) {
  const details = document.createElement("details");
  details.className = "delivery-more small";
  const summary = document.createElement("summary");
  summary.textContent = "Attempts and body";
  const id = document.createElement("p");
  const code = document.createElement("code");
  code.textContent = delivery.delivery_id;
  id.append("webhook-id ", code, " (the same on every attempt and replay)");
  const attempts = document.createElement("ol");
  attempts.className = "attempt-list";
  for (const attempt of delivery.attempt_log) {
    const li = document.createElement("li");
    const ok = attempt.status_code >= 200 && attempt.status_code < 300;
    li.append(timeOf(attempt.at, preciseTime), ` · ${ok ? `answered ${attempt.status_code}` : attempt.error || `answered ${attempt.status_code}`}`);
    attempts.append(li);
  }
  const body = document.createElement("pre");
  body.className = "mono delivery-body";
  body.textContent = JSON.stringify(delivery.payload, null, 2);
  body.tabIndex = 0; // it may scroll: reachable by keyboard
  details.append(summary, id, ...(delivery.attempt_log.length ? [attempts] : []), body);
  return details;
}

const logs = new WeakMap(); // card -> {cursor, timer}

function stopLog(card) {
  const state = logs.get(card);
  if (state) clearTimeout(state.timer);
  logs.delete(card);
}

/** The log's first page afresh (and the subscription, which the sender may have turned off);
 *  while something is being sent or retried, again in a moment. */
async function loadLog(card, { more = false } = {}) {
  const log = card.querySelector(".hook-log");
  const status = log.querySelector(".log-status");
  const hook = hooks.get(card.dataset.hookId);
  const state = logs.get(card) || { cursor: null, timer: null };
  clearTimeout(state.timer);
  logs.set(card, state);
  const query = new URLSearchParams({ limit: String(LOG_PAGE) });
  if (more && state.cursor) query.set("cursor", state.cursor);
  if (!more) status.textContent = "Loading deliveries…";
  try {
    const [page, fresh, failed] = await Promise.all([
      api(`${hookPath(hook)}/deliveries?${query}`),
      more ? hook : api(hookPath(hook)),
      // Whether "Replay all failed" has anything to do: a failed one among the newest 100.
      more ? null : api(`${hookPath(hook)}/deliveries?status=failed&limit=100`),
    ]);
    if (!hookCard(hook.subscription_id) || log.hidden) return; // deleted or closed meanwhile
    if (!more) fillHook(card, fresh);
    const list = log.querySelector(".delivery-list");
    const items = page.items.map((d) => renderDelivery(card, d));
    if (more) list.append(...items);
    else list.replaceChildren(...items);
    state.cursor = page.next_cursor;
    log.querySelector(".log-more").hidden = !page.next_cursor;
    if (failed) log.dataset.failed = failed.items.length ? "yes" : "";
    if (page.items.some((d) => d.status === "failed")) log.dataset.failed = "yes";
    const enabled = hooks.get(hook.subscription_id).enabled;
    log.querySelector(".replay-all").hidden = !(log.dataset.failed && enabled);
    const shown = list.children.length;
    const busy = page.items.some((d) => d.status === "pending");
    status.textContent = shown
      ? `${shown === 1 ? "The last delivery" : `The last ${shown} deliveries`}, newest first${busy ? "; refreshing while some are being sent" : ""}.${log.dataset.failed && !enabled ? " Turn the subscription on to replay the failed ones." : ""}`
      : "Nothing sent yet: deliveries show here as events happen (they are kept 30 days).";
    if (busy && !more) state.timer = setTimeout(() => loadLog(card), LOG_POLL_MS);
  } catch (error) {
    status.textContent = failure(error, "load the deliveries");
  }
}

async function replayOne(card, delivery, button) {
  button.disabled = true;
  try {
    await api(`${hookPath(hooks.get(card.dataset.hookId))}/deliveries/${encodeURIComponent(delivery.delivery_id)}/replay`, { method: "POST" });
    toast(`Replaying the ${delivery.event_type} delivery`, "success");
    await loadLog(card);
    card.querySelector(".refresh").focus();
  } catch (error) {
    button.disabled = false;
    card.querySelector(".log-status").textContent = failure(error, "replay the delivery");
  }
}

async function replayAll(card) {
  const button = card.querySelector(".replay-all");
  button.disabled = true;
  try {
    const { replayed, more } = await api(`${hookPath(hooks.get(card.dataset.hookId))}/replay-failed`, { method: "POST" });
    toast(replayed
      ? `Replaying ${replayed} failed ${replayed === 1 ? "delivery" : "deliveries"}${more ? "; press again for the rest" : ""}`
      : "No failed deliveries to replay", "success");
    await loadLog(card);
    card.querySelector(".refresh").focus();
  } catch (error) {
    card.querySelector(".log-status").textContent = failure(error, "replay the failed deliveries");
  } finally {
    button.disabled = false;
  }
}

// -- adding a subscription ------------------------------------------------------------------

function validUrl(text) {
  try { return ["https:", "http:"].includes(new URL(text).protocol); } catch { return false; }
}

/** Why the form cannot be sent (and the field marked and focused), or "". The API checks the
 *  rest (https, a public address, no credentials) and says what it refused. */
function hookFormProblem(url, types) {
  return problemOf([
    [$("hook-url"), !url, "Give the URL the app receives events at."],
    [$("hook-url"), Boolean(url) && !validUrl(url), "The URL must be a whole address, starting with https://"],
    [$("hook-types"), !types.length, "Choose at least one event."],
  ]);
}

async function createHook(event) {
  event.preventDefault();
  const form = $("hook-form");
  const url = $("hook-url").value.trim();
  const types = [...form.querySelectorAll("input[name=event_type]:checked")].map((i) => i.value);
  const description = $("hook-description").value.trim();
  const problem = hookFormProblem(url, types);
  $("hook-error").textContent = problem;
  if (problem) return;
  const button = $("hook-submit");
  button.disabled = true;
  button.textContent = "Adding…";
  try {
    const created = await api("/api/v1/webhooks", {
      method: "POST", body: { url, event_types: types, description },
    });
    const { secret, ...hook } = created;
    addHooks([hook]);
    resetForm(form);
    showHookSecret(hook, secret, false);
  } catch (error) {
    $("hook-error").textContent = failure(error, "add the subscription");
    if (error instanceof ApiError && error.status === 0) {
      $("hook-error").textContent += " If it is in the list, delete it and add it again.";
    }
    if (error instanceof ApiError && error.status === 422 && /url/.test(error.message)) {
      $("hook-url").setAttribute("aria-invalid", "true");
    }
    $("hook-url").focus();
  } finally {
    button.textContent = "Add subscription";
    hooksStatus();
  }
}

function showHookSecret(hook, secret, rotated) {
  showSecret({
    title: rotated ? "The new signing secret" : "Your webhook signing secret",
    why: rotated
      ? `Give it to the app now. The previous secret keeps signing alongside it for ${ROTATION_HOURS} hours, then stops.`
      : "The app checks the signature on every delivery with it. If you lose it, rotate it.",
    label: `Signing secret for ${hook.url}`,
    secret,
    back: () => hookCard(hook.subscription_id)?.querySelector(".hook-url") || $("hook-url"),
  });
}

// -- page -----------------------------------------------------------------------------------

async function loadMembers() {
  try {
    await pager("/api/v1/organisation/members", $("members-more"), renderMembers)();
  } catch (error) {
    $("members-status").className = "form-error";
    $("members-status").textContent = failure(error, "load the members");
  }
}

/** The keys' or the webhooks' section (`prefix` "key" or "hook"): `load` fills its list for an
 *  owner or admin; a member gets neither list nor form (explainReadOnly says whom to ask). */
async function loadManaged(canManage, prefix, what, load) {
  if (!canManage) {
    $(`${prefix}-list`).hidden = true;
    $(`${prefix}-list-title`).hidden = true;
    return;
  }
  $(`${prefix}-form`).hidden = false;
  const status = $(`${prefix}s-status`);
  status.textContent = `Loading ${what}…`;
  try {
    await load();
  } catch (error) {
    status.className = "form-error";
    status.textContent = failure(error, `load the ${what}`);
  }
}

async function main() {
  if (!requireSignIn("/organisation.html")) return;
  fillChecks($("key-scopes"), SCOPES, "scope");
  fillChecks($("hook-types"), EVENT_TYPES, "event_type");
  $("key-form").addEventListener("submit", createKey);
  $("hook-form").addEventListener("submit", createHook);
  $("key-copy").addEventListener("click", copySecret);
  $("key-dialog").addEventListener("close", closedSecret);
  me = await account().catch(() => null);
  $("account-name").textContent = me ? `${me.name} · ${me.email}` : "";
  let organisation;
  try {
    organisation = await api("/api/v1/organisation");
  } catch (error) {
    $("org-status").className = "form-error";
    $("org-status").textContent = failure(error, "load your organisation");
    return;
  }
  $("org-title").textContent = organisation.name;
  const role = organisation.your_role;
  $("org-status").textContent = `You are ${role === "admin" || role === "owner" ? "an" : "a"} ${(ROLE_NAMES[role] || role || "").toLowerCase()} of this organisation.`;
  const canManage = MANAGERS.has(role);
  await Promise.all([
    loadMembers(),
    loadManaged(canManage, "key", "keys", () => pager("/api/v1/keys", $("keys-more"), addKeys)()),
    loadManaged(canManage, "hook", "webhooks", async () => addHooks((await api("/api/v1/webhooks")).items)),
  ]);
  // A member is told whom to ask: the owners and admins, once the members are known.
  if (!canManage) explainReadOnly();
}

main();
