// The landing page (index.html) and the sign-in page (signin.html): the account part of the
// header, "join by link or ID", and the sign-in / create-account forms.
// The page says which it is with <body data-page="landing|signin">.
//
// Exports parseMeetingRef(text) -> meeting id or null, for any page that takes a pasted link.
import { account, api, isSignedIn, onAuthChange, signIn, signOut, signUp } from "/api.js";

const $ = (id) => document.getElementById(id);

// Meeting ids are lower-case letters and digits (service.py's _ID_ALPHABET, 10 long); be
// lenient about what people paste: a whole invite link, spaces or dashes read aloud.
export function parseMeetingRef(text) {
  const raw = (text || "").trim();
  if (!raw) return null;
  let candidate = raw;
  const fromQuery = raw.match(/[?&]m=([^&#\s]+)/);
  if (fromQuery) candidate = decodeURIComponent(fromQuery[1]);
  candidate = candidate.replace(/[\s-]+/g, "").toLowerCase();
  return /^[a-z0-9]{4,32}$/.test(candidate) ? candidate : null;
}

/** Where to go after signing in: a same-origin path from ?next=, else the dashboard. */
function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\")
    ? next
    : "/dashboard.html";
}

function showAccountState() {
  const signedIn = isSignedIn();
  for (const el of document.querySelectorAll("[data-when]")) {
    el.hidden = el.dataset.when !== (signedIn ? "signed-in" : "signed-out");
  }
  account().then((who) => {
    for (const el of document.querySelectorAll("[data-account-name]")) {
      el.textContent = who ? who.name : "";
    }
  }).catch(() => {});
}

function wireHeader() {
  showAccountState();
  onAuthChange(showAccountState);
  for (const button of document.querySelectorAll("[data-sign-out]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      await signOut();
      location.assign("/");
    });
  }
}

function setError(id, message, field) {
  $(id).textContent = message || "";
  if (field) field.setAttribute("aria-invalid", message ? "true" : "false");
}

// -- landing ----------------------------------------------------------------------------------

function wireLanding() {
  const form = $("join-form");
  const input = $("meeting");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = parseMeetingRef(input.value);
    if (!id) {
      setError("meeting-error", "That doesn't look like a meeting link or ID.", input);
      input.focus();
      return;
    }
    setError("meeting-error", "", input);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api(`/api/meetings/${encodeURIComponent(id)}/public`, { auth: false });
      location.assign(`/join.html?m=${encodeURIComponent(id)}`);
    } catch (error) {
      button.disabled = false;
      if (error.status === 404) {
        setError("meeting-error", `No meeting has the ID “${id}”. Check the link and try again.`, input);
        input.focus();
      } else {
        // The join page explains any other problem itself; don't block on a flaky check.
        location.assign(`/join.html?m=${encodeURIComponent(id)}`);
      }
    }
  });
}

// -- sign in / create account -----------------------------------------------------------------

function setMode(mode) {
  const signup = mode === "signup";
  $("signin-form").hidden = signup;
  $("signup-form").hidden = !signup;
  for (const [tab, current] of [[$("tab-signin"), !signup], [$("tab-signup"), signup]]) {
    if (current) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  document.title = `${signup ? "Create account" : "Sign in"} · Townhall`;
}

async function submitWith(form, errorId, work) {
  const button = form.querySelector("button[type=submit]");
  setError(errorId, "");
  button.disabled = true;
  try {
    await work();
    location.assign(nextPath());
  } catch (error) {
    button.disabled = false;
    setError(errorId, error.status === 0 ? "Can't reach Townhall. Check your connection." : error.message);
    form.querySelector("[aria-invalid=true], input")?.focus();
  }
}

function wireSignIn() {
  if (isSignedIn()) { location.replace(nextPath()); return; }
  const params = new URLSearchParams(location.search);
  setMode(params.get("mode"));
  for (const [tab, mode] of [[$("tab-signin"), "signin"], [$("tab-signup"), "signup"]]) {
    tab.addEventListener("click", (event) => {
      event.preventDefault();
      const url = new URL(location.href);
      if (mode === "signup") url.searchParams.set("mode", "signup");
      else url.searchParams.delete("mode");
      history.replaceState(null, "", url);
      // Carry what was typed across: people often start in the wrong form.
      const [from, to] = mode === "signup" ? ["signin", "signup"] : ["signup", "signin"];
      if (!$(`${to}-email`).value) $(`${to}-email`).value = $(`${from}-email`).value;
      setMode(mode);
      $(`${to}-form`).querySelector("input").focus();
    });
  }
  const signinForm = $("signin-form");
  signinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!signinForm.reportValidity()) return;
    submitWith(signinForm, "signin-error", () => signIn($("signin-email").value, $("signin-password").value));
  });
  const signupForm = $("signup-form");
  signupForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!signupForm.reportValidity()) return;
    submitWith(signupForm, "signup-error",
      () => signUp($("signup-email").value, $("signup-password").value, $("signup-name").value));
  });
}

const page = document.body.dataset.page;
if (page === "landing") { wireHeader(); wireLanding(); }
if (page === "signin") wireSignIn();
