// The organisation page (organisation.html), reached from the dashboard's header: the
// organisation's name and members with their roles, and its API keys (docs/partners.md).
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
function timeOf(iso) {
  const time = document.createElement("time");
  time.dateTime = iso;
  time.textContent = dateTime.format(new Date(iso));
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
  const ask = names.length
    ? ` Ask ${new Intl.ListFormat(undefined, { type: "disjunction" }).format(names)} if an app needs one.`
    : " Ask an owner or admin if an app needs one.";
  $("keys-readonly").textContent = `Only owners and admins of the organisation create, see and revoke API keys.${ask}`;
  $("keys-readonly").hidden = false;
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

function fillScopes() {
  const box = $("key-scopes");
  for (const [scope, text] of SCOPES) {
    const id = `scope-${scope.replace(":", "-")}`;
    const row = document.createElement("div");
    row.className = "scope";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = "scope";
    input.value = scope;
    input.id = id;
    input.setAttribute("aria-describedby", `${id}-hint`);
    const label = document.createElement("label");
    label.htmlFor = id;
    const code = document.createElement("code");
    code.textContent = scope;
    label.append(code);
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.id = `${id}-hint`;
    hint.textContent = text;
    row.append(input, label, hint);
    box.append(row);
  }
}

/** Why the form cannot be sent (and the field marked and focused), or "". */
function keyFormProblem(name, scopes, rate) {
  const checks = [
    [$("key-name"), !name, "Give the key a name, such as the app that will use it."],
    [$("key-scopes"), !scopes.length, "Choose at least one scope."],
    [$("key-rate"), !(Number.isInteger(rate) && rate >= 1 && rate <= MAX_RATE), `Requests per second: a whole number from 1 to ${MAX_RATE}.`],
  ];
  let message = "";
  for (const [field, bad, text] of checks) {
    // The scopes' fieldset is marked by its boxes (a group takes no aria-invalid).
    const marked = field.tagName === "FIELDSET" ? [...field.querySelectorAll("input")] : [field];
    for (const input of marked) input.setAttribute("aria-invalid", bad ? "true" : "false");
    field.classList.toggle("invalid", bad);
    if (bad && !message) {
      message = text;
      (field.querySelector("input") || field).focus();
    }
  }
  return message;
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
    form.reset();
    for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
    $("key-scopes").classList.remove("invalid");
    showSecret(key, secret);
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

// -- the new key, shown once ----------------------------------------------------------------

let shownKeyId = null; // the key in the dialog: its card gets the focus when it closes

function showSecret(key, secret) {
  shownKeyId = key.key_id;
  $("key-dialog-name").textContent = key.name;
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
  const card = shownKeyId && document.querySelector(`[data-key-id="${CSS.escape(shownKeyId)}"]`);
  shownKeyId = null;
  if (card) {
    card.scrollIntoView({ block: "nearest" });
    card.querySelector(".key-name").focus();
  } else {
    $("key-name").focus();
  }
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

async function loadKeys(canManage) {
  if (!canManage) {
    $("key-list").hidden = true;
    $("key-list-title").hidden = true;
    return;
  }
  $("key-form").hidden = false;
  $("keys-status").textContent = "Loading keys…";
  try {
    await pager("/api/v1/keys", $("keys-more"), addKeys)();
  } catch (error) {
    $("keys-status").className = "form-error";
    $("keys-status").textContent = failure(error, "load the keys");
  }
}

async function main() {
  if (!requireSignIn("/organisation.html")) return;
  fillScopes();
  $("key-form").addEventListener("submit", createKey);
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
  await Promise.all([loadMembers(), loadKeys(MANAGERS.has(role))]);
  // A member is told whom to ask: the owners and admins, once the members are known.
  if (!MANAGERS.has(role)) explainReadOnly();
}

main();
