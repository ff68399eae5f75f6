// Minimal join page: the full meeting room comes with the web-app issue.
import { MediaSession } from "/media.js";
import { SignalingConnection } from "/signaling.js";

const params = new URLSearchParams(location.search);
const meetingId = params.get("m") || "";
const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text; };

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "content-type": "application/json", ...(options.headers || {}) },
  });
  const body = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
  return body;
}

async function describe() {
  if (!meetingId) { status("No meeting id in the link."); return; }
  try {
    const info = await api(`/api/meetings/${encodeURIComponent(meetingId)}/public`);
    $("title").textContent = info.title;
    const next = info.next_occurrences[0];
    $("when").textContent = next ? new Date(next.start_utc).toLocaleString() : "";
    $("passcode-row").hidden = !info.needs_passcode;
  } catch (error) {
    status(error.message);
  }
}

function render(roster) {
  const list = $("people");
  list.replaceChildren(...[...roster.values()].sort((a, b) => a.place - b.place).map((p) => {
    const li = document.createElement("li");
    li.textContent = `${p.name}${p.muted ? " (muted)" : ""}${p.hand ? " ✋" : ""}`;
    return li;
  }));
}

function addChat(message) {
  const li = document.createElement("li");
  li.textContent = `${message.from_name}: ${message.text}`;
  $("chat").append(li);
}

$("join").addEventListener("submit", async (event) => {
  event.preventDefault();
  status("Joining…");
  try {
    const grant = await api(`/api/meetings/${encodeURIComponent(meetingId)}/join`, {
      method: "POST",
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: JSON.stringify({ display_name: $("name").value, passcode: $("passcode").value || null }),
    });
    const roster = new Map();
    let media = null;
    const startMedia = () => {
      if (media) return;
      media = new MediaSession(connection, $("stage"));
      media.start().catch((error) => status(`Media: ${error.message}`));
    };
    const connection = new SignalingConnection(grant.ws_url, grant.meeting_id, grant.join_token);
    connection.onEvent = (event) => {
      const p = event.data.participant;
      if (event.event === "participant.left") roster.delete(event.data.participant_id);
      else if (p) roster.set(p.participant_id, p);
      if (event.event === "chat.message") addChat(event.data.message);
      if (event.event === "you.admitted") { status(""); $("room").hidden = false; startMedia(); }
      if (event.event === "meeting.ended") status("The host ended the meeting.");
      render(roster);
    };
    await connection.open();
    const joined = await connection.request("join");
    if (joined.status === "waiting") {
      status("Waiting for the host to let you in…");
    } else {
      for (const p of joined.participants) roster.set(p.participant_id, p);
      joined.chat.forEach(addChat);
      render(roster);
      status("");
      $("room").hidden = false;
    }
    $("join").hidden = true;
    if (joined.status !== "waiting") startMedia();
    $("send").addEventListener("submit", async (e) => {
      e.preventDefault();
      const text = $("text").value.trim();
      if (!text) return;
      await connection.request("chat", { text });
      $("text").value = "";
    });
  } catch (error) {
    status(error.message);
  }
});

describe();
