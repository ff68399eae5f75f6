// The invite link (/join.html?m=ID): the meeting, your name, the camera and microphone check,
// then the waiting room or the meeting room on the same page, so the devices opened for the
// check are the ones the meeting uses (nothing re-acquired, the fastest join).

import { BasicPreJoin } from "/room/devices.js";
import { callApi, isSignedIn } from "/room/http.js";
import { RoomView, announce } from "/room/room.js";
import { MeetingSession } from "/room/session.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const meetingId = (params.get("m") || "").trim();
const NAME_KEY = "townhall.display-name";
// The guest identity: a random secret every tab of this browser profile shares, sent with each
// join, so a guest is the same participant over every join of a session (see
// docs/signaling.md, "Sessions and identity"). Cleared storage makes a new guest.
const GUEST_KEY = "townhall.guest-key";
const LOBBY_POLL_MS = 3000;
const LOBBY_MAX_POLLS = 1200; // an hour of waiting, then the page asks to be reloaded

const status = (text) => { $("status").textContent = text; };
let check = null;
let checking = Promise.resolve(); // the pre-join check's first start (startCheck)
let room = null;
// A click on Join while the camera and microphone are still starting (a quick click, a slow
// machine) must not join with them off: wait for the check to settle, at most this long (not
// for a permission prompt left unanswered).
const DEVICE_WAIT_MS = 8000;

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

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// No session runs and this guest may not start one: wait in the lobby, polling the public
// page, then join as soon as a host starts it.
async function waitForHost() {
  status("The host has not started this meeting yet. You will join as soon as it starts.");
  for (let poll = 0; poll < LOBBY_MAX_POLLS; poll += 1) {
    await sleep(LOBBY_POLL_MS);
    try {
      const info = await callApi(`/api/meetings/${encodeURIComponent(meetingId)}/public`);
      if (info.live) return;
    } catch {
      // the network or the API briefly down: keep waiting
    }
  }
  throw new Error("waited an hour for the host; reload the page to keep waiting");
}

async function requestGrant(name) {
  const body = { display_name: name, passcode: $("passcode").value.trim() || null };
  if (!(await isSignedIn())) body.guest_key = guestKey();
  for (;;) {
    try {
      return await callApi(`/api/meetings/${encodeURIComponent(meetingId)}/join`, {
        method: "POST",
        headers: { "Idempotency-Key": crypto.randomUUID() },
        body,
      });
    } catch (error) {
      if (error.code !== "not_started") throw error;
      await waitForHost();
    }
  }
}

async function describe() {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(meetingId)) {
    status("This link has no meeting in it. Check the invite link.");
    $("join-button").disabled = true;
    return;
  }
  try {
    const info = await callApi(`/api/meetings/${encodeURIComponent(meetingId)}/public`);
    $("title").textContent = info.title;
    document.title = `${info.title} · Townhall`;
    const next = (info.next_occurrences || [])[0];
    $("when").textContent = next ? formatWhen(next.start_utc, info.duration_minutes) : "";
    $("passcode-row").hidden = !info.needs_passcode;
    if (!info.live && !info.allow_before_host) {
      status("The host has not started this meeting yet. You can join now and wait.");
    }
  } catch (error) {
    status(error.status === 404 ? "No meeting has this link. Check the invite link." : `Could not load the meeting: ${error.message}`);
  }
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

async function join(event) {
  event.preventDefault();
  const name = $("name").value.trim();
  if (!name) {
    status("Please enter your name.");
    $("name").setAttribute("aria-invalid", "true");
    $("name").focus();
    return;
  }
  $("name").removeAttribute("aria-invalid");
  try { localStorage.setItem(NAME_KEY, name); } catch { /* private mode */ }
  $("join-button").disabled = true;
  status("Joining…");
  // Marks for the join-time benchmark and for anyone profiling a slow join.
  performance.mark("townhall:join-click");
  const devicesReady = devicesSettled(); // alongside the grant and the join, not after them
  let session;
  let reply;
  try {
    const grant = await requestGrant(name);
    performance.mark("townhall:join-grant");
    session = new MeetingSession(grant);
    session.on("finished", ({ state, detail }) => finished(session, state, detail));
    reply = await session.start();
  } catch (error) {
    $("join-button").disabled = false;
    status(joinError(error));
    if (error.code === "forbidden" && /passcode/.test(error.message)) $("passcode").focus();
    return;
  }
  performance.mark("townhall:join-reply");
  status("");
  await devicesReady;
  const devices = {
    stream: check ? check.stream : null,
    micOn: check ? Boolean(check.micOn) : false,
    cameraOn: check ? Boolean(check.cameraOn) : false,
    videoDeviceId: check ? check.videoDeviceId : null,
  };
  room = new RoomView(session, devices);
  if (reply.status === "waiting") {
    $("lobby").hidden = true;
    $("waiting").hidden = false;
    $("waiting-title").focus?.();
    announce("You are in the waiting room. The host will let you in.");
    $("waiting-leave").addEventListener("click", () => session.leave(), { once: true });
    session.on("snapshot", () => {
      if (!$("waiting").hidden) enter(room);
    });
    return;
  }
  await enter(room);
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

function finished(session, state, detail) {
  const texts = {
    ended: "The meeting has ended",
    left: "You left the meeting",
    removed: "You were removed from the meeting",
    denied: "The host did not let you in",
    failed: "You were disconnected",
  };
  if (room) room.close();
  if (check && check.stream) for (const track of check.stream.getTracks()) track.stop();
  document.body.classList.remove("in-room");
  for (const id of ["lobby", "waiting", "room"]) $(id).hidden = true;
  $("banner").hidden = true;
  $("ended").hidden = false;
  $("ended-title").textContent = texts[state] || "The meeting has ended";
  $("ended-detail").textContent = detail || "";
  // The host gets the summary (attendance, chat, polls) once the meeting is over.
  const me = session.me();
  if (me && me.role === "host" && state === "ended") {
    $("summary-link").href = `/summary.html?m=${encodeURIComponent(session.meetingId)}`;
    $("summary-row").hidden = false;
  }
  $("ended-title").focus();
}

async function main() {
  $("join").addEventListener("submit", join);
  try { $("name").value = localStorage.getItem(NAME_KEY) || ""; } catch { /* private mode */ }
  if (await isSignedIn()) $("signed-in-note").hidden = false;
  checking = startCheck();
  await Promise.all([describe(), checking]);
}

main();
