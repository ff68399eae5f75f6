// The summary of one session of a meeting, for its host (/summary.html?m=ID&s=SESSION; without
// s, the latest session): attendance (each person once, with every interval they were in),
// poll results, questions and the public chat transcript, with downloads, and links to the
// meeting's other sessions. Downloads go through api() so they carry the bearer token; a bare
// link would not.

import { api, isSignedIn } from "/api.js";
import { h, percent } from "/collab/dom.js";
import { renderBreakouts, roomStays, roomTag, usedRooms } from "/summary-breakouts.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const meetingId = params.get("m") || "";
const sessionId = params.get("s") || "";
const meetingPath = `/api/meetings/${encodeURIComponent(meetingId)}`;
// The session's own endpoints, or the meeting's (its latest session) without one.
const summaryPath = sessionId ? `${meetingPath}/sessions/${encodeURIComponent(sessionId)}/summary` : `${meetingPath}/summary`;

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
const timeShort = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

const ROLE_NAMES = { host: "Host", cohost: "Co-host", panelist: "Panelist", attendee: "Attendee" };

// "Dec 7, 2026, 4:30 PM – 5:10 PM", the date once when both ends fall on the same day.
function span(fromIso, toIso) {
  if (!toIso) return `${when(fromIso)} – still running`;
  const from = new Date(fromIso);
  const to = new Date(toIso);
  return from.toDateString() === to.toDateString()
    ? `${when(fromIso)} – ${timeShort.format(to)}`
    : `${when(fromIso)} – ${when(toIso)}`;
}

function when(iso, format = dateTime) {
  return iso ? format.format(new Date(iso)) : "";
}

function timeEl(iso, format = timeOnly) {
  return iso ? h("time", { datetime: iso, text: when(iso, format) }) : h("span", { text: "still in" });
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (hours) return `${hours} h ${minutes} min`;
  if (minutes) return `${minutes} min ${rest} s`;
  return `${rest} s`;
}

function table(caption, headers, rows) {
  return h("div", { class: "summary-table-wrap", tabindex: 0, role: "region", "aria-label": caption },
    h("table", { class: "summary-table" },
      h("caption", { text: caption }),
      h("thead", {}, h("tr", {}, headers.map(([text, cls]) => h("th", { scope: "col", class: cls, text })))),
      h("tbody", {}, rows)));
}

function renderAttendance(summary) {
  const rooms = usedRooms(summary); // a column of breakout rooms, when there were any
  const rows = summary.attendance.map((a) => h("tr", {},
    h("th", { scope: "row", text: a.name }),
    h("td", { text: ROLE_NAMES[a.role] || a.role }),
    h("td", {}, h("ul", { class: "intervals", "aria-label": `${a.name}: ${a.intervals.length} ${a.intervals.length === 1 ? "time" : "times"} in the meeting` },
      a.intervals.map((s) => h("li", {}, timeEl(s.joined_at), " – ", timeEl(s.left_at))))),
    h("td", { class: "num", text: duration(a.total_seconds) }),
    rooms ? h("td", {}, roomStays(a)) : null));
  const section = $("attendance");
  section.append(summary.attendance.length
    ? table(`${summary.attendance.length} people attended`, [["Name"], ["Role"], ["Joined – left"], ["Time in meeting", "num"], ...(rooms ? [["Breakout rooms"]] : [])], rows)
    : h("p", { class: "muted", text: "Nobody joined." }));
  section.hidden = false;
}

function renderPolls(summary) {
  const section = $("polls");
  if (!summary.polls.length) {
    section.append(h("p", { class: "muted", text: "No polls." }));
  } else {
    section.append(h("ol", { class: "summary-polls" }, summary.polls.map((poll) => h("li", { class: "collab-card" },
      h("h3", { text: poll.question }),
      h("p", { class: "muted small", text: `${poll.status === "open" ? "Open" : "Closed"} · ${poll.voters} ${poll.voters === 1 ? "voter" : "voters"}` }),
      h("ul", { class: "poll-results" }, poll.options.map((option, i) => {
        const count = poll.counts[i] || 0;
        const pct = percent(count, poll.voters);
        const fill = h("span", { class: "poll-bar-fill" });
        fill.style.width = `${pct}%`; // CSSOM, allowed by the CSP (no style attribute in markup)
        return h("li", { class: "poll-result" },
          h("span", { class: "poll-result-label" },
            h("span", { class: "poll-option", text: option }),
            h("span", { class: "poll-count", text: `${count} ${count === 1 ? "vote" : "votes"}, ${pct}%` })),
          h("span", { class: "poll-bar", "aria-hidden": "true" }, fill));
      }))))));
  }
  section.hidden = false;
}

function renderQuestions(summary) {
  const section = $("questions");
  if (!summary.questions.length) {
    section.append(h("p", { class: "muted", text: "No questions." }));
  } else {
    section.append(table("Questions, most votes first",
      [["Question"], ["Asked by"], ["Votes", "num"], ["Status"], ["Answer"]],
      summary.questions.map((q) => h("tr", {},
        h("td", { text: q.text }), h("td", { text: q.asked_by_name }),
        h("td", { class: "num", text: String(q.votes) }), h("td", { text: q.status }),
        h("td", { text: q.answer || "" })))));
  }
  section.hidden = false;
}

function renderChat(summary) {
  const section = $("chat");
  section.append(summary.chat.length
    ? h("ol", { class: "transcript", "aria-label": "Messages in order" }, summary.chat.map((m) =>
      h("li", {}, timeEl(m.at), roomTag(m), h("span", { class: "from", text: `${m.from_name}:` }), m.text)))
    : h("p", { class: "muted", text: "No public messages." }));
  section.hidden = false;
}

// Save a Blob under a name: an object URL on a temporary link, released right after.
function save(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function download(kind, summary) {
  const status = $("status");
  try {
    if (kind === "json") {
      const text = JSON.stringify(summary, null, 2);
      save(new Blob([text], { type: "application/json" }), `townhall-${meetingId}-summary.json`);
    } else {
      const path = `${summaryPath}.csv?part=${kind}`;
      const response = await api(path, { raw: true, headers: { accept: "text/csv" } });
      save(await response.blob(), `townhall-${meetingId}-${kind}.csv`);
    }
    status.textContent = "Download started.";
  } catch (error) {
    status.textContent = `Could not download: ${error.message}`;
  }
}

// The meeting's most recent sessions, this one marked: one click to another summary.
async function otherSessions(current) {
  const answer = await api(`${meetingPath}/sessions?limit=10`);
  if (answer.sessions.length < 2) return;
  const nav = $("sessions");
  nav.append(h("ol", { class: "session-links" }, answer.sessions.map((row) => {
    const text = row.live ? `${when(row.started_at)} (live now)` : span(row.started_at, row.ended_at);
    return h("li", {}, row.session_id === current
      ? h("span", { "aria-current": "page", class: "current", text })
      : h("a", { href: `/summary.html?m=${encodeURIComponent(meetingId)}&s=${encodeURIComponent(row.session_id)}`, text }));
  })));
  if (answer.next_cursor) nav.append(h("p", { class: "muted small" }, "Older sessions are on ", h("a", { href: "/dashboard.html", text: "your dashboard" }), "."));
  nav.hidden = false;
}

async function main() {
  const status = $("status");
  if (!meetingId) { status.textContent = "No meeting given: open this page from your meetings."; return; }
  if (!isSignedIn()) {
    status.replaceChildren("Sign in to see the summary of your meeting. ",
      h("a", { href: `/signin.html?next=${encodeURIComponent(location.pathname + location.search)}`, text: "Sign in" }));
    return;
  }
  let summary;
  try {
    summary = await api(summaryPath);
  } catch (error) {
    status.textContent = error.status === 404
      ? `${sessionId ? "Session" : "Meeting"} not found: only its host can see a summary${sessionId ? "" : ", once it has run"}.`
      : `Could not load the summary: ${error.message}`;
    return;
  }
  const m = summary.meeting;
  $("title").textContent = `Summary: ${m.title}`;
  document.title = `${m.title} · Summary · Townhall`;
  $("when").textContent = m.started_at ? `Session of ${span(m.started_at, m.ended_at)}` : "The meeting has not started.";
  otherSessions(m.session_id).catch(() => {}); // a convenience: the summary stands without it
  renderAttendance(summary);
  if (usedRooms(summary)) renderBreakouts(summary, $("breakouts"));
  renderPolls(summary);
  renderQuestions(summary);
  renderChat(summary);
  status.textContent = "";
  $("downloads").hidden = false;
  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => download(button.dataset.download, summary));
  }
}

main();
