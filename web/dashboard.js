// The host's dashboard (dashboard.html): the host's meetings with their next occurrences in the
// viewer's time zone ("Live now" on one whose session is running), each with its past sessions
// and their summaries; past one-offs in a group of their own; and the form that schedules (or
// edits) one-off and recurring meetings, with their co-hosts. Signed-in only: without a session
// it sends the person to sign in and back.
//
// Exports (pure helpers):
//   buildRrule({freq, interval, byday, ends, count, untilDate, timezone}) -> RRULE | null
//   describeRrule(rrule) -> "Every week on Monday and Wednesday, 10 times"
//   zonedToUtc(isoLocal, timezone) -> Date
//   parseCohosts(text) -> ["ana@example.com", ...] (lower case, each once, in order)
import { account, api, ApiError } from "/api.js";
import { requireSignIn } from "/signed-in.js";

const $ = (id) => document.getElementById(id);
// Names that IANA has replaced (tzdata's "backward" links) but that the browser's ICU still
// lists, or reports as the viewer's zone: the form shows and sends the current name. Python's
// zoneinfo (the API) accepts both.
const RENAMED_ZONES = {
  "Africa/Asmera": "Africa/Asmara",
  "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
  "America/Catamarca": "America/Argentina/Catamarca",
  "America/Coral_Harbour": "America/Atikokan",
  "America/Cordoba": "America/Argentina/Cordoba",
  "America/Godthab": "America/Nuuk",
  "America/Indianapolis": "America/Indiana/Indianapolis",
  "America/Jujuy": "America/Argentina/Jujuy",
  "America/Louisville": "America/Kentucky/Louisville",
  "America/Mendoza": "America/Argentina/Mendoza",
  "Asia/Calcutta": "Asia/Kolkata",
  "Asia/Katmandu": "Asia/Kathmandu",
  "Asia/Rangoon": "Asia/Yangon",
  "Asia/Saigon": "Asia/Ho_Chi_Minh",
  "Asia/Ulan_Bator": "Asia/Ulaanbaatar",
  "Atlantic/Faeroe": "Atlantic/Faroe",
  "Europe/Kiev": "Europe/Kyiv",
  "Pacific/Enderbury": "Pacific/Kanton",
  "Pacific/Ponape": "Pacific/Pohnpei",
  "Pacific/Truk": "Pacific/Chuuk",
};

function zoneWorks(zone) {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The current IANA name of a zone the browser names the old way. */
function currentZoneName(zone) {
  const renamed = RENAMED_ZONES[zone];
  return renamed && zoneWorks(renamed) ? renamed : zone;
}

const viewerZone = currentZoneName(Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
const WEEKDAYS = [ // RFC 5545 codes, Monday first (ISO 8601)
  ["MO", "Monday"], ["TU", "Tuesday"], ["WE", "Wednesday"], ["TH", "Thursday"],
  ["FR", "Friday"], ["SA", "Saturday"], ["SU", "Sunday"],
];
const UNITS = { DAILY: ["day", "days"], WEEKLY: ["week", "weeks"], MONTHLY: ["month", "months"] };
const MAX_COHOSTS = 10; // as the API (townhall.model.meeting.MAX_COHOSTS)
// What the API takes as an email (townhall.auth.accounts.normalize_email); it says more.
const EMAIL = /^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$/;

// -- time helpers -----------------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, "0");

/** The offset of `timezone` from UTC at instant `date`, in milliseconds. */
function zoneOffset(date, timezone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: timezone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(date).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return asUtc - Math.floor(date.getTime() / 1000) * 1000;
}

/** A wall-clock time ("2026-12-01T09:00") in `timezone`, as an instant. */
export function zonedToUtc(isoLocal, timezone) {
  const [date, time = "00:00:00"] = isoLocal.split("T");
  const [y, mo, d] = date.split("-").map(Number);
  const [h, mi, s = 0] = time.split(":").map(Number);
  const guess = Date.UTC(y, mo - 1, d, h, mi, s);
  // Two passes settle the offset around a daylight-saving change.
  let instant = guess - zoneOffset(new Date(guess), timezone);
  instant = guess - zoneOffset(new Date(instant), timezone);
  return new Date(instant);
}

/** Today's date and the next half hour in `timezone`, as the form's default start. */
function nextHalfHour(timezone) {
  const soon = new Date(Math.ceil((Date.now() + 5 * 60_000) / 1_800_000) * 1_800_000);
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: timezone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit",
  }).formatToParts(soon).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}` };
}

const dateFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric" });
const dateYearFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric", year: "numeric" });
const thisYear = new Date().getFullYear();
const formatDate = (date) => (date.getFullYear() === thisYear ? dateFormat : dateYearFormat).format(date);
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const timeZoneFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", timeZoneName: "short" });

function sameDay(a, b) {
  return dateFormat.format(a) === dateFormat.format(b);
}

/** "Tue, Dec 1, 2026, 9:00 AM – 10:00 AM EST" in the viewer's zone. */
function formatOccurrence(startUtc, durationMinutes) {
  const start = new Date(startUtc);
  const end = new Date(start.getTime() + durationMinutes * 60_000);
  const endText = sameDay(start, end) ? timeZoneFormat.format(end)
    : `${formatDate(end)}, ${timeZoneFormat.format(end)}`;
  return `${formatDate(start)}, ${timeFormat.format(start)} – ${endText}`;
}

function relative(startUtc, durationMinutes) {
  const minutes = Math.round((new Date(startUtc).getTime() - Date.now()) / 60_000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  if (minutes <= 0) return minutes > -durationMinutes ? "happening now" : "ended";
  if (minutes < 60) return rtf.format(minutes, "minute");
  if (minutes < 48 * 60) return rtf.format(Math.round(minutes / 60), "hour");
  return rtf.format(Math.round(minutes / 1440), "day");
}

// -- recurrence -------------------------------------------------------------------------------

/** The RRULE the API expects (see functions/townhall/meetings/schedule.py), or null. */
export function buildRrule({ freq, interval = 1, byday = [], ends = "count", count = 10, untilDate = "", timezone }) {
  if (!freq) return null;
  const parts = [`FREQ=${freq}`];
  if (interval > 1) parts.push(`INTERVAL=${interval}`);
  if (freq === "WEEKLY" && byday.length) parts.push(`BYDAY=${byday.join(",")}`);
  if (ends === "count") parts.push(`COUNT=${count}`);
  if (ends === "until" && untilDate) {
    // dateutil wants UNTIL in UTC when the start is zoned: the end of that day in the
    // meeting's zone (so an occurrence on that date is included).
    const until = zonedToUtc(`${untilDate}T23:59:59`, timezone);
    const u = until.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
    parts.push(`UNTIL=${u}`);
  }
  return parts.join(";");
}

/** An RRULE UNTIL (20270605T145959Z, or a bare date) as an instant. */
function parseUntil(u) {
  const at = (from, to) => u.slice(from, to) || "00";
  return new Date(`${u.slice(0, 4)}-${u.slice(4, 6)}-${u.slice(6, 8)}T${at(9, 11)}:${at(11, 13)}:${at(13, 15)}Z`);
}

function listText(items) {
  return new Intl.ListFormat(undefined, { style: "long", type: "conjunction" }).format(items);
}

export function describeRrule(rrule) {
  if (!rrule) return "";
  const parts = Object.fromEntries(rrule.split(";").map((p) => p.split("=")));
  const unit = UNITS[parts.FREQ] || [parts.FREQ?.toLowerCase() || "", parts.FREQ?.toLowerCase() || ""];
  const interval = Number(parts.INTERVAL || 1);
  let text = interval === 1 ? `Every ${unit[0]}` : `Every ${interval} ${unit[1]}`;
  if (parts.BYDAY) {
    const names = parts.BYDAY.split(",").map((code) => (WEEKDAYS.find(([c]) => c === code) || [code, code])[1]);
    text += ` on ${listText(names)}`;
  }
  if (parts.COUNT) text += `, ${parts.COUNT} times`;
  if (parts.UNTIL) {
    text += `, until ${dateYearFormat.format(parseUntil(parts.UNTIL))}`;
  }
  return text;
}

// -- co-hosts ---------------------------------------------------------------------------------

/** The co-host field's emails: split on commas, semicolons and spaces; lower case, each once. */
export function parseCohosts(text) {
  const emails = (text || "").split(/[\s,;]+/).map((e) => e.trim().toLowerCase()).filter(Boolean);
  return [...new Set(emails)];
}

/** Why the co-host list cannot be sent, or "". */
function cohostProblem(emails, ownEmail) {
  const bad = emails.find((e) => e.length > 254 || !EMAIL.test(e));
  if (bad) return `Co-hosts: “${bad}” is not an email address.`;
  if (emails.length > MAX_COHOSTS) return `List at most ${MAX_COHOSTS} co-hosts.`;
  if (ownEmail && emails.includes(ownEmail.toLowerCase())) return "Co-hosts: you host the meeting already; list other people.";
  return "";
}

// -- toasts -----------------------------------------------------------------------------------

function toast(message, kind = "info") {
  const region = $("toasts");
  const item = document.createElement("div");
  item.className = `toast toast-${kind}`;
  item.textContent = message;
  region.append(item);
  setTimeout(() => item.remove(), 5000);
}

// -- the meetings list ------------------------------------------------------------------------

let meetings = [];

function badge(text, accent = false) {
  const span = document.createElement("span");
  span.className = accent ? "badge badge-accent" : "badge";
  span.textContent = text;
  return span;
}

function joinPath(meeting) {
  // join_url carries the public origin; the page is on it already, so stay relative.
  return `/join.html?m=${encodeURIComponent(meeting.meeting_id)}`;
}

function inviteText(meeting) {
  return meeting.join_url;
}

async function copyInvite(card, meeting, button) {
  const link = inviteText(meeting);
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
    await navigator.clipboard.writeText(link);
    button.textContent = "Copied ✓";
    toast("Invite link copied", "success");
    setTimeout(() => { button.textContent = "Copy invite link"; }, 2500);
  } catch {
    // No clipboard permission (or plain http): show the link selected, ready to copy.
    const fallback = card.querySelector(".copy-fallback");
    const input = fallback.querySelector("input");
    input.value = link;
    fallback.hidden = false;
    input.focus();
    input.select();
    toast("Select the link and copy it", "info");
  }
}

async function downloadIcs(meeting, button) {
  button.disabled = true;
  try {
    const response = await api(`/api/meetings/${encodeURIComponent(meeting.meeting_id)}/invite.ics`, {
      raw: true, headers: { accept: "text/calendar" },
    });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = `townhall-${meeting.meeting_id}.ics`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    toast(`Could not download the invite: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

async function deleteMeeting(card, meeting) {
  try {
    await api(`/api/meetings/${encodeURIComponent(meeting.meeting_id)}`, { method: "DELETE" });
    meetings = meetings.filter((m) => m.meeting_id !== meeting.meeting_id);
    if (editing?.meeting_id === meeting.meeting_id) resetForm();
    render();
    toast(`Deleted “${meeting.title}”`, "success");
    $("meetings-title").focus();
  } catch (error) {
    toast(`Could not delete: ${error.message}`, "error");
  }
}

function renderMeeting(meeting) {
  const card = $("meeting-template").content.firstElementChild.cloneNode(true);
  const id = meeting.meeting_id;
  card.dataset.meetingId = id;
  const titleId = `meeting-${id}-title`;
  card.setAttribute("aria-labelledby", titleId);
  const title = card.querySelector(".meeting-title");
  title.id = titleId;
  title.textContent = meeting.title;

  const badges = card.querySelector(".badges");
  if (meeting.live) {
    const live = badge("Live now");
    live.classList.add("badge-live");
    badges.append(live);
    card.classList.add("live");
  }
  badges.append(badge(meeting.kind === "webinar" ? "Webinar" : "Meeting", true));
  if (meeting.rrule) badges.append(badge("Recurring"));
  if (meeting.passcode) badges.append(badge("Passcode"));
  if (meeting.waiting_room) badges.append(badge("Waiting room"));

  const [next, ...later] = meeting.next_occurrences;
  const when = card.querySelector(".when");
  if (next) {
    const time = document.createElement("time");
    time.dateTime = next.start_utc;
    time.textContent = formatOccurrence(next.start_utc, meeting.duration_minutes);
    const soon = document.createElement("span");
    soon.className = "relative";
    soon.dataset.start = next.start_utc;
    soon.dataset.duration = String(meeting.duration_minutes);
    soon.textContent = relative(next.start_utc, meeting.duration_minutes);
    when.append(time, document.createTextNode(" · "), soon);
  } else {
    when.textContent = meeting.schedule_error
      ? `This meeting's schedule needs fixing: ${meeting.schedule_error}`
      : "No upcoming occurrences";
  }
  const ruleParts = [];
  if (meeting.rrule) ruleParts.push(describeRrule(meeting.rrule));
  if (currentZoneName(meeting.timezone) !== viewerZone) ruleParts.push(`scheduled in ${meeting.timezone}`);
  if (meeting.passcode) ruleParts.push(`passcode ${meeting.passcode}`);
  if (meeting.cohosts?.length) ruleParts.push(`co-hosts ${meeting.cohosts.join(", ")}`);
  card.querySelector(".rule").textContent = ruleParts.join(" · ");
  if (meeting.stored_error) {
    // A damaged stored meeting: listed with what could be read, until it is edited or deleted.
    const damage = document.createElement("p");
    damage.className = "form-error small";
    damage.textContent = `This meeting needs fixing (edit and save it, or delete it): ${meeting.stored_error}`;
    when.after(damage);
  }

  const occurrences = card.querySelector(".occurrences");
  if (later.length) {
    occurrences.setAttribute("aria-label", `Later occurrences of ${meeting.title}`);
    for (const o of later) {
      const li = document.createElement("li");
      const time = document.createElement("time");
      time.dateTime = o.start_utc;
      time.textContent = formatOccurrence(o.start_utc, meeting.duration_minutes);
      li.append(time);
      occurrences.append(li);
    }
  } else {
    occurrences.remove();
  }

  // Every card has the same action names; the meeting's title describes them to AT.
  for (const action of card.querySelectorAll(".actions > *, .edit, .delete")) action.setAttribute("aria-describedby", titleId);
  card.querySelector(".edit").addEventListener("click", () => editMeeting(meeting));
  const start = card.querySelector(".start");
  start.href = joinPath(meeting);
  start.textContent = meeting.live ? "Join" : "Start";
  const summary = card.querySelector(".summary");
  summary.href = `/summary.html?m=${encodeURIComponent(id)}`;
  summary.hidden = !meeting.last_session_at;
  if (meeting.last_session_at) wireSessions(card, meeting, titleId);

  const fallback = card.querySelector(".copy-fallback");
  fallback.querySelector("input").id = `invite-${id}`;
  fallback.querySelector("label").htmlFor = `invite-${id}`;

  const copy = card.querySelector(".copy");
  copy.addEventListener("click", () => copyInvite(card, meeting, copy));
  const ics = card.querySelector(".ics");
  ics.addEventListener("click", () => downloadIcs(meeting, ics));

  const confirm = card.querySelector(".confirm-delete");
  const del = card.querySelector(".delete");
  del.addEventListener("click", () => {
    confirm.hidden = false;
    confirm.querySelector(".cancel").focus();
  });
  confirm.querySelector(".cancel").addEventListener("click", () => {
    confirm.hidden = true;
    del.focus();
  });
  confirm.querySelector(".confirm").addEventListener("click", () => deleteMeeting(card, meeting));
  return card;
}

// Live now, coming, or needing a fix: upcoming. The rest (one-offs whose time has passed) are
// past, still listed so their sessions and summaries stay reachable.
function upcoming(meeting) {
  return meeting.live || meeting.next_occurrences.length > 0
    || Boolean(meeting.schedule_error) || Boolean(meeting.stored_error);
}

function render(freshId = null) {
  const list = $("meetings");
  const coming = meetings.filter(upcoming);
  const past = meetings.filter((m) => !upcoming(m));
  list.replaceChildren(...coming.map(renderMeeting));
  $("past-meetings").replaceChildren(...past.map(renderMeeting));
  $("past-group").hidden = past.length === 0;
  const status = $("list-status");
  if (!coming.length) {
    status.textContent = meetings.length ? "No upcoming meetings." : "No upcoming meetings. Schedule one with the form.";
    status.className = "empty";
  } else {
    const live = coming.filter((m) => m.live).length;
    status.textContent = `${coming.length} upcoming ${coming.length === 1 ? "meeting" : "meetings"}`
      + (live ? `, ${live} live now` : "");
    status.className = "visually-hidden";
  }
  for (const id of expanded) {
    const card = document.querySelector(`[data-meeting-id="${CSS.escape(id)}"]`);
    if (card) card.querySelector(".sessions-toggle")?.click();
  }
  const fresh = freshId && document.querySelector(`[data-meeting-id="${CSS.escape(freshId)}"]`);
  if (fresh) {
    fresh.classList.add("fresh");
    fresh.scrollIntoView({ block: "nearest" });
  }
}

function refreshRelativeTimes() {
  for (const span of document.querySelectorAll(".meeting .relative")) {
    span.textContent = relative(span.dataset.start, Number(span.dataset.duration));
  }
}

// As the API lists them: live first, then what is coming (soonest first), then the rest (the
// most recently run first).
function sortMeetings() {
  const first = (m) => (m.next_occurrences[0] ? m.next_occurrences[0].start_utc : "9999");
  const last = (m) => m.last_session_at || "";
  meetings.sort((a, b) => Number(b.live) - Number(a.live) || first(a).localeCompare(first(b)) || last(b).localeCompare(last(a)));
}

// -- past sessions ------------------------------------------------------------------------------

const SESSIONS_PAGE = 5;
const expanded = new Set(); // meeting ids whose past sessions are shown (kept across renders)

function sessionItem(meetingId, row) {
  const start = new Date(row.started_at);
  const end = row.ended_at ? new Date(row.ended_at) : null;
  const time = document.createElement("time");
  time.dateTime = row.started_at;
  time.textContent = `${formatDate(start)}, ${timeFormat.format(start)}`;
  const link = document.createElement("a");
  link.href = `/summary.html?m=${encodeURIComponent(meetingId)}&s=${encodeURIComponent(row.session_id)}`;
  const until = end
    ? ` – ${sameDay(start, end) ? timeFormat.format(end) : `${formatDate(end)}, ${timeFormat.format(end)}`}`
    : " – now";
  link.append(time, document.createTextNode(until));
  // Every link is a summary: the name says so, and starts with what is shown.
  link.setAttribute("aria-label", `${link.textContent}: summary`);
  const li = document.createElement("li");
  li.dataset.sessionId = row.session_id;
  li.append(link);
  if (row.live) {
    const live = badge("Live now");
    live.classList.add("badge-live");
    li.append(" ", live);
  } else if (end) {
    const minutes = Math.round((end - start) / 60_000);
    const length = document.createElement("span");
    length.className = "muted";
    length.textContent = minutes < 1 ? " · under a minute" : ` · ${minutes} min`;
    li.append(length);
  }
  return li;
}

function wireSessions(card, meeting, titleId) {
  const box = card.querySelector(".sessions");
  const toggle = box.querySelector(".sessions-toggle");
  const body = box.querySelector(".sessions-body");
  const list = box.querySelector(".sessions-list");
  const more = box.querySelector(".sessions-more");
  const status = box.querySelector(".sessions-status");
  const id = meeting.meeting_id;
  box.hidden = false;
  body.id = `sessions-${id}`;
  toggle.setAttribute("aria-controls", body.id);
  toggle.setAttribute("aria-describedby", titleId);
  list.setAttribute("aria-label", `Past sessions of ${meeting.title}`);
  let cursor = null;
  let loaded = false;

  async function page() {
    more.disabled = true;
    status.textContent = "Loading sessions…";
    try {
      const query = new URLSearchParams({ limit: String(SESSIONS_PAGE) });
      if (cursor) query.set("cursor", cursor);
      const answer = await api(`/api/meetings/${encodeURIComponent(id)}/sessions?${query}`);
      const items = answer.sessions.map((row) => sessionItem(id, row));
      list.append(...items);
      cursor = answer.next_cursor || null;
      more.hidden = !cursor;
      const shown = list.children.length;
      status.textContent = shown
        ? `${shown} ${shown === 1 ? "session" : "sessions"} shown${cursor ? "; more are older" : ""}.`
        : "This meeting has not run yet.";
      return items;
    } catch (error) {
      status.textContent = `Could not load the sessions: ${error.message}`;
      return [];
    } finally {
      more.disabled = false;
    }
  }

  toggle.addEventListener("click", async () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    body.hidden = !open;
    if (open) expanded.add(id); else expanded.delete(id);
    if (open && !loaded) {
      loaded = true;
      await page();
    }
  });
  more.addEventListener("click", async () => {
    const items = await page();
    // Keyboard users go on from the first session that came in, not from a vanished button.
    if (items.length) items[0].querySelector("a").focus();
  });
}

// Back on the page (another tab started or ended a meeting): the live markers follow.
async function refreshOnReturn() {
  if (document.visibilityState !== "visible" || editing) return;
  try {
    const fresh = await api("/api/meetings");
    const key = (list) => JSON.stringify(list.map((m) => [m.meeting_id, m.live, m.last_session_at, m.title]));
    if (key(fresh) === key(meetings)) return;
    meetings = fresh;
    sortMeetings();
    render();
  } catch {
    // offline for now: the list stays as it was
  }
}

async function load() {
  try {
    meetings = await api("/api/meetings");
    sortMeetings();
    render();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) { toSignIn(); return; }
    const status = $("list-status");
    status.className = "form-error";
    status.textContent = `Could not load your meetings: ${error.message}`;
  }
}

// -- the schedule form ------------------------------------------------------------------------

let idempotencyKey = null; // kept across retries of one submission, so it is created once
let ownEmail = ""; // the signed-in host's, never a co-host of their own meeting
let editing = null; // the meeting the form is editing, or null when it schedules a new one

// The time zone is typed, with the browser's list as suggestions (a datalist: typing "kol"
// or "new y" narrows it): the viewer's own zone first, then UTC, then every zone by its
// current name, A to Z. An old name typed in (Asia/Calcutta) is taken as the current one.
let zoneNames = new Map(); // lower case, spaces as "_" -> the zone's name to send
let zoneCities = new Map(); // "paris" -> Europe/Paris, for a city typed alone (when only one)

function zoneOffsetLabel(zone) {
  try {
    const parts = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "shortOffset" }).formatToParts(new Date());
    return (parts.find((p) => p.type === "timeZoneName") || {}).value || "";
  } catch {
    return "";
  }
}

function fillZones() {
  let listed = [];
  try { listed = Intl.supportedValuesOf("timeZone"); } catch { listed = []; }
  const current = [...new Set(listed.map(currentZoneName))].filter((z) => z !== viewerZone && z !== "UTC").sort();
  const zones = [viewerZone, ...(viewerZone === "UTC" ? [] : ["UTC"]), ...current];
  zoneNames = new Map(zones.map((zone) => [zone.toLowerCase(), zone]));
  for (const old of Object.keys(RENAMED_ZONES)) {
    if (zoneWorks(old)) zoneNames.set(old.toLowerCase(), currentZoneName(old));
  }
  zoneCities = new Map();
  const seen = new Set();
  for (const [name, zone] of zoneNames) {
    const city = name.split("/").pop();
    if (!name.includes("/")) continue;
    if (seen.has(city) && zoneCities.get(city) !== zone) zoneCities.set(city, null); // ambiguous
    else zoneCities.set(city, zone);
    seen.add(city);
  }
  const options = zones.map((zone) => {
    const option = document.createElement("option");
    option.value = zone;
    const offset = zoneOffsetLabel(zone);
    // Shown beside the name, and searched too: "new york" finds America/New_York.
    const place = zone.split("/").pop().replace(/_/g, " ");
    option.label = [zone === viewerZone ? "Your time zone" : "", place, offset].filter(Boolean).join(" · ");
    return option;
  });
  $("timezone-list").replaceChildren(...options);
  $("timezone").value = viewerZone;
}

/** The zone the field names, by its current name, or "" if it names none. */
function chosenZone() {
  const typed = $("timezone").value.trim().replace(/\s+/g, "_");
  if (!typed) return "";
  const known = zoneNames.get(typed.toLowerCase()) || zoneCities.get(typed.toLowerCase());
  if (known) return known;
  // Not listed, but a name the browser and zoneinfo know (US/Eastern, Etc/GMT+5): as typed.
  return /^[A-Za-z0-9_+\-]+(\/[A-Za-z0-9_+\-]+)*$/.test(typed) && zoneWorks(typed) ? currentZoneName(typed) : "";
}

function fillWeekdays() {
  const box = $("weekdays");
  for (const [code, name] of WEEKDAYS) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = "byday";
    input.value = code;
    const short = document.createElement("span");
    short.textContent = name.slice(0, 3);
    short.setAttribute("aria-hidden", "true");
    const full = document.createElement("span");
    full.className = "visually-hidden";
    full.textContent = name;
    label.append(input, short, full);
    box.append(label);
  }
}

function weekdayOf(dateText) {
  // The start date's weekday (a calendar date, no zone involved).
  const [y, m, d] = dateText.split("-").map(Number);
  const day = new Date(Date.UTC(y, m - 1, d)).getUTCDay(); // 0 = Sunday
  return WEEKDAYS[(day + 6) % 7][0];
}

function formValues() {
  const form = $("schedule-form");
  const freq = $("repeat").value;
  const byday = [...form.querySelectorAll("input[name=byday]:checked")].map((i) => i.value);
  return {
    title: $("title").value.trim(),
    date: $("date").value,
    time: $("time").value,
    timezone: chosenZone(),
    duration: Number($("duration").value),
    freq,
    interval: Number($("interval").value || 1),
    byday,
    ends: form.querySelector("input[name=ends]:checked").value,
    count: Number($("count").value || 0),
    untilDate: $("until").value,
    kind: form.querySelector("input[name=kind]:checked").value,
    passcode: $("passcode").value,
    waitingRoom: $("waiting-room").checked,
    allowBeforeHost: $("allow-before-host").checked,
    cohosts: parseCohosts($("cohosts").value),
  };
}

function updateRepeat() {
  const v = formValues();
  // A webinar never starts without its host.
  const webinar = v.kind === "webinar";
  $("allow-before-host").disabled = webinar;
  if (webinar) $("allow-before-host").checked = false;
  $("repeat-options").hidden = !v.freq;
  $("weekdays").hidden = v.freq !== "WEEKLY";
  if (v.freq) {
    const [one, many] = UNITS[v.freq];
    $("interval-unit").textContent = v.interval === 1 ? one : many;
  }
  if (v.freq === "WEEKLY" && !v.byday.length && v.date) {
    const box = $("weekdays").querySelector(`input[value=${weekdayOf(v.date)}]`);
    if (box) box.checked = true;
  }
  const rule = v.freq ? buildRrule({ ...v, timezone: v.timezone || viewerZone }) : null;
  $("repeat-summary").textContent = rule ? describeRrule(rule) : "";
  // A meeting set in another zone: say when that is for the person scheduling it.
  let preview = "";
  if (v.date && v.time && v.timezone && v.timezone !== viewerZone) {
    const start = zonedToUtc(`${v.date}T${v.time}`, v.timezone);
    if (!Number.isNaN(start.getTime())) {
      preview = `That's ${formatDate(start)}, ${timeZoneFormat.format(start)} for you.`;
    }
  }
  $("start-preview").textContent = preview;
}

/** Returns an error message, or "" when the form can be sent. Marks the field. */
function validate(v) {
  const mark = (id, bad) => $(id).setAttribute("aria-invalid", bad ? "true" : "false");
  const checks = [
    ["title", !v.title, "Give the meeting a title."],
    ["date", !v.date, "Pick a date."],
    ["time", !v.time, "Pick a start time."],
    ["timezone", !v.timezone, "Pick a time zone from the list, such as Europe/Paris."],
    ["passcode", v.passcode && (v.passcode.length < 4 || v.passcode.trim() !== v.passcode),
      "A passcode needs 4 to 32 characters, without spaces at either end."],
    ["interval", v.freq && !(v.interval >= 1 && v.interval <= 12), "Repeat every 1 to 12."],
    ["count", v.freq && v.ends === "count" && !(v.count >= 1 && v.count <= 500), "End after 1 to 500 times."],
    ["until", v.freq && v.ends === "until" && (!v.untilDate || v.untilDate < v.date), "The end date must be on or after the start date."],
    ["cohosts", Boolean(cohostProblem(v.cohosts, ownEmail)), cohostProblem(v.cohosts, ownEmail)],
  ];
  let message = "";
  for (const [id, bad, text] of checks) {
    mark(id, bad);
    if (bad && !message) { message = text; $(id).focus(); }
  }
  return message;
}

async function schedule(event) {
  event.preventDefault();
  const v = formValues();
  const error = validate(v);
  $("schedule-error").textContent = error;
  if (error) return;
  const body = {
    title: v.title,
    start: `${v.date}T${v.time}`,
    timezone: v.timezone,
    duration_minutes: v.duration,
    rrule: buildRrule(v),
    passcode: v.passcode || null,
    waiting_room: v.waitingRoom,
    allow_before_host: v.allowBeforeHost && v.kind !== "webinar",
    kind: v.kind,
    cohosts: v.cohosts,
  };
  const button = $("schedule-submit");
  const label = button.textContent;
  button.disabled = true;
  button.textContent = editing ? "Saving…" : "Scheduling…";
  try {
    let meeting;
    if (editing) {
      // PUT replaces the whole meeting: keep what the form does not show.
      meeting = await api(`/api/meetings/${encodeURIComponent(editing.meeting_id)}`, {
        method: "PUT", body: { ...body, video_slots: editing.video_slots },
      });
    } else {
      idempotencyKey ||= crypto.randomUUID();
      meeting = await api("/api/meetings", {
        method: "POST", body, headers: { "Idempotency-Key": idempotencyKey },
      });
      idempotencyKey = null;
    }
    const verb = editing ? "Saved" : "Scheduled";
    meetings = meetings.filter((m) => m.meeting_id !== meeting.meeting_id);
    meetings.push(meeting); // a one-off already past goes to "Past"
    sortMeetings();
    resetForm();
    render(meeting.meeting_id);
    toast(meeting.next_occurrences.length ? `${verb} “${meeting.title}”`
      : `${verb} “${meeting.title}”, but it has no occurrences left`, "success");
  } catch (failure) {
    if (failure instanceof ApiError && failure.status !== 0) idempotencyKey = null; // refused: a new try is a new request
    $("schedule-error").textContent = failure.message;
    button.textContent = label;
  } finally {
    button.disabled = false;
  }
}

/** The form's repeat fields from an RRULE the API returned. */
function rruleFields(rrule, timezone) {
  if (!rrule) return { freq: "" };
  const parts = Object.fromEntries(rrule.split(";").map((p) => p.split("=")));
  const fields = { freq: parts.FREQ, interval: Number(parts.INTERVAL || 1), byday: (parts.BYDAY || "").split(",").filter(Boolean) };
  if (parts.COUNT) Object.assign(fields, { ends: "count", count: Number(parts.COUNT) });
  else if (parts.UNTIL) {
    // UNTIL is UTC; the form shows the date it falls on in the meeting's zone.
    const until = parseUntil(parts.UNTIL);
    const day = new Intl.DateTimeFormat("en-CA", { timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit" }).format(until);
    Object.assign(fields, { ends: "until", untilDate: day });
  } else fields.ends = "never";
  return fields;
}

function editMeeting(meeting) {
  resetForm();
  editing = meeting;
  const form = $("schedule-form");
  $("title").value = meeting.title;
  const [date, time] = meeting.start.split("T");
  $("date").min = "";
  $("date").value = date;
  $("time").value = time.slice(0, 5);
  $("timezone").value = currentZoneName(meeting.timezone);
  const duration = String(meeting.duration_minutes);
  if (![...$("duration").options].some((o) => o.value === duration)) {
    $("duration").append(new Option(`${meeting.duration_minutes} min`, duration));
  }
  $("duration").value = duration;
  const rule = rruleFields(meeting.rrule, meeting.timezone);
  $("repeat").value = rule.freq;
  if (rule.freq) {
    $("interval").value = String(rule.interval);
    for (const box of form.querySelectorAll("input[name=byday]")) box.checked = rule.byday.includes(box.value);
    form.querySelector(`input[name=ends][value=${rule.ends}]`).checked = true;
    if (rule.ends === "count") $("count").value = String(rule.count);
    if (rule.ends === "until") $("until").value = rule.untilDate;
  }
  form.querySelector(`input[name=kind][value=${meeting.kind}]`).checked = true;
  $("passcode").value = meeting.passcode || "";
  $("waiting-room").checked = meeting.waiting_room;
  $("allow-before-host").checked = Boolean(meeting.allow_before_host);
  $("cohosts").value = (meeting.cohosts || []).join(", ");
  $("schedule-title").textContent = `Edit “${meeting.title}”`;
  $("schedule-submit").textContent = "Save changes";
  $("cancel-edit").hidden = false;
  $("schedule-title").closest(".schedule").classList.add("editing");
  updateRepeat();
  $("schedule-title").scrollIntoView({ block: "start" });
  $("title").focus();
}

function generatePasscode() {
  const digits = crypto.getRandomValues(new Uint32Array(1))[0] % 1_000_000;
  $("passcode").value = String(digits).padStart(6, "0");
  $("passcode").focus();
}

function resetForm() {
  // Each meeting starts from the defaults: a webinar or a passcode must never carry over unseen.
  editing = null;
  $("schedule-title").textContent = "Schedule a meeting";
  $("schedule-submit").textContent = "Schedule meeting";
  $("cancel-edit").hidden = true;
  $("schedule-title").closest(".schedule").classList.remove("editing");
  $("schedule-error").textContent = "";
  $("schedule-form").reset();
  for (const input of $("schedule-form").querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const start = nextHalfHour(viewerZone);
  $("date").value = start.date;
  $("time").value = start.time;
  $("date").min = start.date;
  $("timezone").value = viewerZone;
  $("timezone-error").textContent = "";
  updateRepeat();
}

function wireForm() {
  fillZones();
  fillWeekdays();
  resetForm();
  const form = $("schedule-form");
  form.addEventListener("input", updateRepeat);
  form.addEventListener("change", updateRepeat);
  form.addEventListener("submit", schedule);
  $("until").addEventListener("focus", () => { form.querySelector("input[name=ends][value=until]").checked = true; });
  $("count").addEventListener("focus", () => { form.querySelector("input[name=ends][value=count]").checked = true; });
  $("generate-passcode").addEventListener("click", generatePasscode);
  // Once typed, the field shows the zone's current name ("asia/calcutta" -> Asia/Kolkata).
  $("timezone").addEventListener("change", () => {
    const zone = chosenZone();
    if (zone && zone !== $("timezone").value) $("timezone").value = zone;
    $("timezone").setAttribute("aria-invalid", zone ? "false" : "true");
    $("timezone-error").textContent = zone ? "" : "No time zone has that name: pick one from the list.";
    updateRepeat();
  });
  $("cancel-edit").addEventListener("click", () => {
    const id = editing?.meeting_id;
    resetForm();
    document.querySelector(`[data-meeting-id="${CSS.escape(id || "")}"] .edit`)?.focus();
  });
}

// -- page -------------------------------------------------------------------------------------

function toSignIn() {
  location.replace(`/signin.html?next=${encodeURIComponent("/dashboard.html")}`);
}

async function main() {
  if (!requireSignIn("/dashboard.html")) return;
  $("zone-note").textContent = `Times in your time zone, ${viewerZone.replace(/_/g, " ")}.`;
  wireForm();
  account().then((who) => {
    $("account-name").textContent = who ? `${who.name} · ${who.email}` : "";
    ownEmail = who ? who.email : "";
  }).catch(() => {});
  await load();
  setInterval(refreshRelativeTimes, 30_000);
  document.addEventListener("visibilitychange", refreshOnReturn);
}

main();
