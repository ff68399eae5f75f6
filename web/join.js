// The invite link (/join.html?m=ID): the meeting, your name, the camera and microphone check,
// then the lobby (no session runs yet), the waiting room or the meeting room on the same page,
// so the devices opened for the check are the ones the meeting uses (nothing re-acquired, the
// fastest join).
//
// Who is joining decides what the page asks:
// - the meeting's host, signed in: no name and no passcode; "Start" when no session runs;
// - a webinar attendee: a "watch" pre-join that opens no camera or microphone;
// - anyone else: name, passcode if the meeting has one, and the camera and microphone check.
// After the meeting the end screen offers to come back: "Rejoin" while the session runs
// (after leaving or being disconnected), "Join again" once a host starts a new session, and
// "Start again" for the host. Never after a removal or a denial.

import { BasicPreJoin } from "/room/devices.js";
import { callApi, isSignedIn } from "/room/http.js";
import { el } from "/room/icons.js";
import { RoomView, announce } from "/room/room.js";
import { MeetingSession } from "/room/session.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const meetingId = (params.get("m") || "").trim();
const meetingPath = `/api/meetings/${encodeURIComponent(meetingId)}`;
// A join link the partner API made for a named person (`#invite=...`, docs/partners.md): they
// join under the invite's name, without the passcode. It rides in the fragment, which the
// browser never sends to a server; the join checks it, the page only shows its name.
const invite = new URLSearchParams(location.hash.slice(1)).get("invite");
const NAME_KEY = "townhall.display-name";
// The guest identity: a random secret every tab of this browser profile shares, sent with each
// join, so a guest is the same participant over every join of a session (see
// docs/signaling.md, "Sessions and identity"). Cleared storage makes a new guest.
const GUEST_KEY = "townhall.guest-key";
const LOBBY_POLL_MS = 3000;
const LOBBY_MAX_POLLS = 1200; // an hour of waiting, then the page asks to be reloaded
const RETURN_POLL_MS = 5000;
const RETURN_MAX_POLLS = 720; // the end screen watches for an hour whether it can offer a way back
// A click on Join while the camera and microphone are still starting (a quick click, a slow
// machine) must not join with them off: wait for the check to settle, at most this long (not
// for a permission prompt left unanswered).
const DEVICE_WAIT_MS = 8000;

// The room as the page first had it: every entry (a rejoin too) starts from a fresh copy, so
// no listener of an earlier room is left behind.
const roomTemplate = $("room").cloneNode(true);
let roomUsed = false;

const page = {
  info: null, // GET /public
  signedIn: false,
  owner: false, // the signed-in person hosts this meeting, or is one of its co-hosts
  cohost: false, // ... one of its co-hosts: starts and joins like the host, but is not the host
  watch: false, // a webinar attendee: no camera or microphone
  unknown: false, // the link leads to no meeting (showUnknown)
  name: "",
  passcode: "",
  lobby: null, // AbortController while waiting for the host
  returning: null, // AbortController of the end screen's watch
};
const status = (text) => { $("status").textContent = text; };
let check = null;
let checking = Promise.resolve(); // the pre-join check's first start (startCheck)
let described = Promise.resolve();
let room = null;
let session = null;

function devicesSettled() {
  const started = checking.then(() => (check ? check.starting : null)); // a re-acquisition too
  const timeout = new Promise((resolve) => setTimeout(resolve, DEVICE_WAIT_MS));
  return Promise.race([started.catch(() => {}), timeout]);
}

function guestKey() {
  try {
    let key = localStorage.getItem(GUEST_KEY);
    if (!key || !/^[A-Za-z0-9_-]{22,128}$/.test(key)) {
      key = randomKey();
      localStorage.setItem(GUEST_KEY, key);
    }
    return key;
  } catch {
    return randomKey(); // private mode: this page's identity only
  }
}

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("stopped waiting", "AbortError"));
    }, { once: true });
  });
}

// -- the lobby ----------------------------------------------------------------------------------

function showLobby(on) {
  $("join").hidden = on;
  $("host-wait").hidden = !on;
  if (!on) return;
  $("host-wait-when").textContent = scheduledText();
  $("host-wait-title").focus();
  announce("The host has not started this meeting yet. You will join as soon as it starts.");
}

function scheduledText() {
  const next = ((page.info && page.info.next_occurrences) || [])[0];
  return next ? `Scheduled for ${formatWhen(next.start_utc, page.info.duration_minutes)}.` : "";
}

// No session runs and this guest may not start one: wait in the lobby, polling the public
// page, then join as soon as a host starts it. "Leave the lobby" aborts `signal`.
async function waitForHost(signal) {
  showLobby(true);
  for (let poll = 0; poll < LOBBY_MAX_POLLS; poll += 1) {
    await sleep(LOBBY_POLL_MS, signal);
    try {
      const info = await callApi(`${meetingPath}/public`);
      if (info.live) {
        announce("The meeting has started. Joining…");
        return;
      }
    } catch {
      // the network or the API briefly down: keep waiting
    }
  }
  throw new Error("waited an hour for the host; reload the page to keep waiting");
}

async function requestGrant({ passcode, signal }) {
  // The host is their account: no name, no passcode. Anyone else sends the guest identity
  // too (a signed-in guest is their account all the same: the server prefers it). A join
  // link's invite stands for all of it.
  const body = invite
    ? { invite }
    : page.owner ? {} : { display_name: page.name, passcode: passcode || null, guest_key: guestKey() };
  for (;;) {
    try {
      return await callApi(`${meetingPath}/join`, {
        method: "POST",
        headers: { "Idempotency-Key": crypto.randomUUID() },
        body,
      });
    } catch (error) {
      if (error.code !== "not_started") throw error;
      await waitForHost(signal);
    }
  }
}

// -- what the page says before joining ----------------------------------------------------------

// Resolves false when the link leads to no meeting: the page then says so, and neither opens
// the camera nor offers to join.
async function describe() {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(meetingId)) {
    showUnknown(meetingId ? "This link has no meeting in it." : "This link has no meeting ID in it.");
    return false;
  }
  page.signedIn = await isSignedIn();
  let info;
  try {
    [info, page.owner] = await Promise.all([callApi(`${meetingPath}/public`), page.signedIn ? ownsMeeting() : false]);
  } catch (error) {
    if (error.status === 404) {
      showUnknown(`No meeting has the ID “${meetingId}”.`);
      return false;
    }
    status(`Could not load the meeting: ${error.message}`);
    return true;
  }
  page.info = info;
  page.cohost = !invite && !page.owner && info.your_role === "cohost";
  page.owner = !invite && (page.owner || page.cohost);
  page.watch = info.kind === "webinar" && !page.owner;
  $("title").textContent = info.title;
  document.title = `${info.title} · Townhall`;
  const next = (info.next_occurrences || [])[0];
  $("when").textContent = next ? formatWhen(next.start_utc, info.duration_minutes) : "";
  $("name-row").hidden = page.owner;
  $("passcode-row").hidden = page.owner || !info.needs_passcode || Boolean(invite);
  if (invite) {
    $("name").value = invitedName(invite);
    $("name").readOnly = true; // the invite's name is the one the server uses
  }
  const note = $("signed-in-note");
  note.hidden = !page.signedIn || Boolean(invite);
  note.textContent = page.cohost
    ? "You are a co-host of this meeting (signed in): you join as yourself, and may start it."
    : page.owner
    ? (info.live
      ? "You are the host of this meeting (signed in): you join as yourself."
      : "You are the host of this meeting (signed in). Guests who come before you wait in a lobby until you start.")
    : "You are signed in: you join as yourself.";
  setJoinLabel(info.live);
  if (!page.owner && !info.live && !info.allow_before_host) {
    status("The host has not started this meeting yet. You can join now and wait.");
  }
  return true;
}

// The name a join link's invite carries (a JWT's payload: shown, not trusted; the join checks
// the signature).
function invitedName(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    return String(JSON.parse(new TextDecoder().decode(bytes)).name || "");
  } catch {
    return "";
  }
}

// A link to no meeting (mistyped, or the meeting was deleted): say so in place of the meeting,
// with no form to fill in and no camera check.
function showUnknown(text) {
  page.unknown = true;
  $("title").textContent = "Meeting not found";
  document.title = "Meeting not found · Townhall";
  $("when").textContent = "";
  $("join-button").disabled = true;
  for (const id of ["name-row", "passcode-row", "signed-in-note"]) $(id).hidden = true;
  status("There is no meeting to join at this link.");
  const root = $("prejoin");
  root.setAttribute("aria-label", "Meeting not found");
  root.replaceChildren(el("div", { class: "watch-panel unknown-meeting stack", role: "alert" },
    el("h2", { text: "This meeting does not exist" }),
    el("p", { text: `${text} Check the invite link, or ask the host to send it again.` }),
    el("p", {}, el("a", { class: "button-link secondary", href: "/", text: "Go to Townhall's home page" }))));
}

// GET /api/meetings/{id} answers only its host.
async function ownsMeeting() {
  try {
    await callApi(meetingPath);
    return true;
  } catch {
    return false;
  }
}

function setJoinLabel(live) {
  $("join-button").textContent = page.owner && !live ? "Start" : "Join";
}

function formatWhen(startUtc, minutes) {
  const start = new Date(startUtc);
  const end = new Date(start.getTime() + (minutes || 0) * 60_000);
  const day = start.toLocaleDateString([], { weekday: "long", month: "long", day: "numeric" });
  const from = start.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const to = end.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return minutes ? `${day}, ${from} – ${to}` : `${day}, ${from}`;
}

// The pre-join check from web/prejoin.js, or a minimal one while that module is missing.
async function startCheck() {
  let Check = BasicPreJoin;
  try {
    const module = await import("/prejoin.js");
    if (typeof module.PreJoinCheck === "function") Check = module.PreJoinCheck;
  } catch {
    // not there yet: the basic check does the same job
  }
  check = new Check($("prejoin"));
  try {
    await check.start();
  } catch (error) {
    console.warn("device check failed", error);
  }
}

// A webinar attendee watches: nothing to check, and no camera or microphone is opened.
function showWatch() {
  const root = $("prejoin");
  root.setAttribute("aria-label", "Watching this webinar");
  root.replaceChildren(el("div", { class: "watch-panel stack" },
    el("h2", { text: "You will watch this webinar" }),
    el("p", { text: "Your camera and microphone stay off: Townhall does not ask for them." }),
    el("p", { text: "To ask something, raise your hand or use Q&A. If the host lets you talk, Townhall asks for your camera and microphone then." })));
}

// -- joining ------------------------------------------------------------------------------------

async function join(event) {
  event.preventDefault();
  await described;
  if (page.unknown) return;
  if (!page.owner) {
    const name = $("name").value.trim();
    if (!name) {
      status("Please enter your name.");
      $("name").setAttribute("aria-invalid", "true");
      $("name").focus();
      return;
    }
    $("name").removeAttribute("aria-invalid");
    page.name = name;
    if (!invite) try { localStorage.setItem(NAME_KEY, name); } catch { /* private mode */ }
  }
  page.passcode = $("passcode").value.trim();
  await enterMeeting({ passcode: page.passcode });
}

// Join (or start) through the normal join: the lobby if no session runs, then the waiting
// room or the room. `fallbackPasscode`: tried if the first answer asks for a passcode (a
// rejoin sends none: someone already let in is not asked again).
async function enterMeeting({ passcode, fallbackPasscode = null }) {
  $("join-button").disabled = true;
  status(page.owner && !(page.info && page.info.live) ? "Starting…" : "Joining…");
  // Marks for the join-time benchmark and for anyone profiling a slow join.
  performance.mark("townhall:join-click");
  const devicesReady = devicesSettled(); // alongside the grant and the join, not after them
  page.lobby = new AbortController();
  const signal = page.lobby.signal;
  let next;
  let reply;
  try {
    let grant;
    try {
      grant = await requestGrant({ passcode, signal });
    } catch (error) {
      if (!(fallbackPasscode && error.status === 403 && /passcode/.test(error.message))) throw error;
      grant = await requestGrant({ passcode: fallbackPasscode, signal });
    }
    performance.mark("townhall:join-grant");
    next = new MeetingSession(grant);
    next.on("finished", ({ state, detail }) => finished(next, state, detail));
    reply = await next.start();
  } catch (error) {
    showLobby(false);
    $("join-button").disabled = false;
    if (error.name === "AbortError") {
      status("You left the lobby. Join again whenever you like.");
      announce("You left the lobby.");
      $("join-button").focus();
      return;
    }
    status(joinError(error));
    if (error.status === 403 && /passcode/.test(error.message)) {
      $("passcode-row").hidden = false;
      $("passcode").focus();
    }
    return;
  } finally {
    page.lobby = null;
  }
  session = next;
  performance.mark("townhall:join-reply");
  status("");
  await devicesReady;
  const devices = {
    stream: check ? check.stream : null,
    micOn: check ? Boolean(check.micOn) : false,
    cameraOn: check ? Boolean(check.cameraOn) : false,
    videoDeviceId: check ? check.videoDeviceId : null,
    watch: page.watch, // nothing opened: asked for only if the host lets them talk
  };
  next.setDevices?.(devices); // what a reload of this tab turns on again
  await showRoom(next, reply, devices);
}

// The room (or the waiting room) for a started session.
async function showRoom(started, reply, devices) {
  if (roomUsed) $("room").replaceWith(roomTemplate.cloneNode(true));
  roomUsed = true;
  room = new RoomView(started, devices);
  const view = room;
  if (reply.status === "waiting") {
    $("lobby").hidden = true;
    $("waiting").hidden = false;
    $("waiting-title").focus?.();
    announce("You are in the waiting room. The host will let you in.");
    started.on("snapshot", () => {
      if (!$("waiting").hidden && room === view) enter(view);
    });
    return;
  }
  await enter(view);
}

async function enter(view) {
  if (check) check.stop({ keepTracks: true });
  announce("You joined the meeting.");
  await view.enter();
}

function joinError(error) {
  if (error.status === 403) return error.message.includes("passcode") ? "That passcode is not right." : `You cannot join: ${error.message}.`;
  if (error.status === 410) return "This meeting has ended.";
  if (error.status === 404) return "No meeting has this link.";
  return `Could not join: ${error.message}`;
}

// -- after the meeting --------------------------------------------------------------------------

function finished(ended, state, detail) {
  if (ended !== session) return; // an earlier session of this page
  const texts = {
    ended: "The meeting has ended",
    left: "You left the meeting",
    removed: "You were removed from the meeting",
    denied: "The host did not let you in",
    failed: "You were disconnected",
  };
  if (room) room.close();
  if (check) check.stop(); // the tracks too (the room closed its own)
  document.body.classList.remove("in-room");
  for (const id of ["lobby", "waiting", "room"]) $(id).hidden = true;
  $("banner").hidden = true;
  $("ended").hidden = false;
  $("ended-title").textContent = texts[state] || "The meeting has ended";
  $("ended-detail").textContent = detail || (state === "removed" ? "You cannot come back into this meeting unless the host lets you." : "");
  // The host gets this session's summary (attendance, chat, polls).
  const summary = page.owner && !page.cohost && (state === "ended" || state === "left");
  $("summary-row").hidden = !summary;
  if (summary) {
    $("summary-link").className = state === "ended" ? "button-link" : "button-link secondary";
    const sid = ended.grant && ended.grant.session_id;
    $("summary-link").href = `/summary.html?m=${encodeURIComponent(ended.meetingId)}${sid ? `&s=${encodeURIComponent(sid)}` : ""}`;
  }
  offerReturn(state);
  $("ended-title").focus();
}

// A way back, while there is one: "Rejoin" into the running session (after leaving or a lost
// connection), "Join again" when a host has started a new one, and "Start again" for the host.
// Watched from the public page until the person goes or an hour has passed.
function offerReturn(state) {
  page.returning?.abort();
  const row = $("return-row");
  const button = $("return-button");
  const note = $("return-note");
  row.hidden = true;
  note.textContent = "";
  if (state === "removed" || state === "denied") return;
  const rejoin = state === "left" || state === "failed";
  const controller = new AbortController();
  page.returning = controller;
  const offer = (label, text, { say = false } = {}) => {
    const changed = row.hidden || button.textContent !== label;
    button.textContent = label;
    // After ending it, the host more likely wants the summary than to start again.
    button.className = label === "Start again" && state === "ended" ? "secondary" : "primary";
    row.hidden = false;
    note.textContent = text;
    if (changed && say) announce(text);
  };
  (async () => {
    for (let poll = 0; poll < RETURN_MAX_POLLS && !controller.signal.aborted; poll += 1) {
      let live = null;
      try {
        live = (await callApi(`${meetingPath}/public`)).live;
      } catch {
        // unknown for now: leave the screen as it is
      }
      if (controller.signal.aborted) return;
      if (live === true && rejoin) offer("Rejoin", "The meeting is still going on.");
      else if (live === true) offer("Join again", "The host started the meeting again.", { say: true });
      else if (live === false && page.owner) offer("Start again", "You can start the meeting again from here or from its link.");
      else if (live === false) {
        row.hidden = true;
        note.textContent = "If the host starts the meeting again, you can join from here.";
      }
      try { await sleep(RETURN_POLL_MS, controller.signal); } catch { return; }
    }
  })();
}

// Back in through the normal join, as the same person (same guest identity or account),
// without asking for the passcode again.
async function returnToMeeting() {
  page.returning?.abort();
  page.returning = null;
  const starting = $("return-button").textContent === "Start again";
  $("ended").hidden = true;
  $("lobby").hidden = false;
  showLobby(false);
  setJoinLabel(!starting);
  status(starting ? "Starting…" : "Joining…");
  if (!page.watch) {
    checking = startCheck();
  }
  await enterMeeting({ passcode: null, fallbackPasscode: page.passcode || null });
}

// -- a reload ----------------------------------------------------------------------------------

// This tab was in the meeting a moment ago (a reload, a crashed tab reopened): within the
// reconnect window, straight back in as the same participant (room/session.js keeps the resume
// credential in sessionStorage), with the microphone and camera as they were.
async function resume() {
  $("join-button").disabled = true;
  status("Taking you back into the meeting…");
  let resumed = null;
  try {
    resumed = await MeetingSession.resume(meetingId);
  } catch (error) {
    console.warn("could not resume", error);
  }
  $("join-button").disabled = false;
  status("");
  if (!resumed) return false;
  await described;
  session = resumed;
  resumed.on("finished", ({ state, detail }) => finished(resumed, state, detail));
  const reply = resumed.reply;
  const you = reply.you || {};
  const kind = reply.meeting && reply.meeting.kind;
  let devices = { stream: null, micOn: false, cameraOn: false, videoDeviceId: null };
  if (!(kind === "webinar" && you.role === "attendee")) {
    // Both opened, as the check does (a muted microphone is a disabled track, ready to unmute).
    const { openDevices } = await import("/prejoin.js");
    const opened = await openDevices();
    const video = opened.stream.getVideoTracks()[0];
    devices = {
      stream: opened.stream,
      micOn: Boolean(resumed.devices && resumed.devices.micOn && opened.stream.getAudioTracks().length),
      cameraOn: Boolean(resumed.devices && resumed.devices.cameraOn && video),
      videoDeviceId: video ? video.getSettings().deviceId || null : null,
    };
  }
  await showRoom(resumed, reply, devices);
  return true;
}

// While the page takes someone back in, it says so in place of the form: there is nothing to
// fill in (the same person, no passcode), so nothing is offered that would suggest otherwise.
// Off again once in the room, or when the form is needed after all (its status line then says
// why). The camera and microphone check stays beside it, as it does in the lobby.
function showReturning(on) {
  let panel = $("returning");
  if (on && !panel) {
    panel = el("section", { id: "returning", class: "join-form host-wait stack", role: "status" },
      el("h2", { text: "Taking you back into the meeting…" }),
      el("p", { class: "muted", text: "You were in this meeting in this tab: you join again as yourself." }),
      el("div", { class: "spinner", "aria-hidden": "true" }));
    $("join").before(panel);
  }
  if (!panel) return;
  panel.hidden = !on;
  $("join").hidden = on;
}

// The tab was in the meeting, but too long ago to resume (or the network failed): the normal
// join as the same person, with the name it used, and no passcode (someone already let in is
// not asked again), without showing the form. The microphone and camera come back no more on
// than they were in the meeting: the check opens them as this browser last chose before a
// meeting, and someone who muted in the room must not come back heard.
async function joinAgainAfterReload(saved) {
  // `saved`: what the tab held when this page loaded. Still there after a failed resume (only
  // an end, a removal or a refusal clears it), and nobody has pressed Join meanwhile.
  try {
    if (!saved || session || page.lobby || !page.info || !page.info.live) return;
    if (MeetingSession.resumeOutcome === "elsewhere") {
      // Another tab of this browser is in the meeting as this person (a duplicated tab): joining
      // here would push that one out.
      status("You are in this meeting in another tab of this browser.");
      return;
    }
    if (typeof MeetingSession.saved === "function" && !MeetingSession.saved(meetingId)) return;
    if (!page.owner) {
      page.name = $("name").value.trim();
      if (!page.name) return; // nothing to join as: the form asks
    }
    showReturning(true);
    const was = saved.devices || {};
    if (check && !was.micOn && check.micOn) {
      if (typeof check.setMic === "function") check.setMic(false);
      else check.toggle?.("mic");
    }
    if (check && !was.cameraOn && check.cameraOn) {
      if (typeof check.setCamera === "function") check.setCamera(false);
      else check.toggle?.("camera");
    }
    status("Taking you back into the meeting…");
    await enterMeeting({ passcode: null, fallbackPasscode: null });
  } finally {
    showReturning(false); // in the room (the lobby hidden with it), or back to the form
  }
}

async function main() {
  $("join").addEventListener("submit", join);
  $("host-wait-leave").addEventListener("click", () => page.lobby?.abort());
  $("waiting-leave").addEventListener("click", () => session?.leave());
  $("return-button").addEventListener("click", returnToMeeting);
  try { $("name").value = localStorage.getItem(NAME_KEY) || ""; } catch { /* private mode */ }
  described = describe();
  const saved = typeof MeetingSession.saved === "function" ? MeetingSession.saved(meetingId) : null;
  if (saved) showReturning(true); // straight back in (resume, or joinAgainAfterReload): no form
  if (saved && saved.withinWindow && typeof MeetingSession.resume === "function" && (await resume())) {
    showReturning(false); // in the room
    return;
  }
  // The check starts once the page knows who joins (a webinar attendee opens no devices).
  checking = described.then((known) => {
    if (known === false) return null;
    return page.watch ? showWatch() : startCheck();
  });
  await checking;
  await joinAgainAfterReload(saved);
}

main();
