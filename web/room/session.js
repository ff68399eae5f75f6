// One participant's place in a meeting over signaling: the join grant, the socket, the roster,
// and staying connected. When the socket drops (network, the 10-minute idle timeout, the
// 2-hour cap) the session rejoins silently with the latest resume token: same participant,
// same role and place, state re-loaded from the new snapshot.

import { SignalingConnection, SignalingError } from "/signaling.js";
import { callApi } from "/room/http.js";
import { Roster } from "/room/roster.js";

const PING_INTERVAL_MS = 4 * 60_000; // well inside the 10-minute idle timeout
const PLANNED_RECONNECT_MS = 110 * 60_000; // before the 2-hour connection cap
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];
const MAX_RECONNECT_ATTEMPTS = 40;
const MAX_REPLAY_EVENTS = 1000; // about five minutes, then we give up and say so

// Terminal states: nothing to reconnect to.
const FINAL = new Set(["ended", "removed", "denied", "left", "failed"]);

export class MeetingSession {
  constructor(grant) {
    this.grant = grant;
    this.meetingId = grant.meeting_id;
    this.participantId = grant.participant_id;
    this.roster = new Roster();
    this.chat = new Map(); // message_id -> message
    this.meeting = null;
    this.you = null;
    this.state = "connecting"; // connecting | waiting | admitted | reconnecting | FINAL
    this.seq = 0;
    this.listeners = new Map();
    this.connection = null;
    this.timers = [];
  }

  // -- listeners ---------------------------------------------------------------------------
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, []);
    this.listeners.get(name).push(fn);
  }

  emit(name, payload) {
    for (const fn of this.listeners.get(name) || []) {
      try { fn(payload); } catch (error) { console.error(`${name} listener failed`, error); }
    }
  }

  // -- who am I ----------------------------------------------------------------------------
  me() {
    return this.roster.get(this.participantId) || this.you;
  }

  isModerator() {
    const me = this.me();
    return Boolean(me && (me.role === "host" || me.role === "cohost"));
  }

  isHost() {
    const me = this.me();
    return Boolean(me && me.role === "host");
  }

  // -- connecting --------------------------------------------------------------------------

  // First connection: resolves with the join reply (a snapshot, or {status: "waiting"}).
  async start() {
    const reply = await this.connectWith(this.grant);
    this.keepAlive();
    return reply;
  }

  async connectWith(grant) {
    const connection = new SignalingConnection(grant.ws_url, grant.meeting_id, grant.join_token);
    connection.onEvent = (event) => { if (this.connection === connection) this.receive(event); };
    connection.onClose = (info) => { if (this.connection === connection) this.dropped(info); };
    await connection.open();
    const previous = this.connection;
    this.connection = connection;
    this.connectedAt = Date.now();
    let reply;
    try {
      reply = await connection.request("join");
    } finally {
      // Only after the join (the server closes it then too: one participant, one socket).
      // Closed before, its $disconnect would still hold our place and tell everyone we left.
      if (previous) previous.close();
    }
    if (reply.status === "waiting") {
      this.state = "waiting";
      this.meeting = reply.meeting;
      this.you = reply.you;
      this.emit("waiting", reply);
    } else {
      this.admit(reply);
    }
    return reply;
  }

  admit(snapshot) {
    const wasAdmitted = this.meeting !== null && this.state !== "waiting";
    this.meeting = snapshot.meeting;
    this.you = snapshot.you;
    this.seq = Math.max(this.seq, snapshot.seq);
    this.roster.load(snapshot);
    for (const message of snapshot.chat || []) this.chat.set(message.message_id, message);
    this.state = "admitted";
    // The latest snapshot and the events since, for panels that mount later (collab panels
    // load beside the media): they replay these and miss nothing.
    this.snapshot = snapshot;
    this.since = [];
    this.emit("snapshot", { snapshot, rejoin: wasAdmitted });
  }

  keepAlive() {
    this.timers.push(setInterval(() => {
      if (this.connection && this.connection.isOpen) this.connection.request("ping").catch(() => {});
    }, PING_INTERVAL_MS));
    this.timers.push(setInterval(() => {
      if (!FINAL.has(this.state) && this.state !== "reconnecting" && Date.now() - this.connectedAt > PLANNED_RECONNECT_MS) {
        this.reconnect({ planned: true });
      }
    }, 60_000));
  }

  dropped(info) {
    if (FINAL.has(this.state)) return;
    this.reconnect({ planned: false, info });
  }

  // Rejoin with backoff. A planned reconnect (the 2-hour cap) is make-before-break and quiet.
  async reconnect({ planned }) {
    if (this.reconnecting) return;
    this.reconnecting = true;
    const before = this.state;
    if (!planned) {
      this.state = "reconnecting";
      this.emit("connection", { state: "reconnecting" });
    }
    try {
      for (let attempt = 0; attempt < MAX_RECONNECT_ATTEMPTS && !FINAL.has(this.state); attempt += 1) {
        if (attempt > 0 || !planned) await sleep(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]);
        if (FINAL.has(this.state)) return;
        let grant;
        try {
          grant = await callApi(`/api/meetings/${encodeURIComponent(this.meetingId)}/rejoin`, {
            method: "POST",
            body: {
              session_id: this.grant.session_id,
              participant_id: this.participantId,
              resume_token: this.grant.resume_token,
            },
          });
        } catch (error) {
          if (error.status === 410) { this.finish("ended"); return; }
          if (error.status === 403) { this.finish("removed"); return; }
          if (error.status === 401 || error.status === 404) { this.finish("failed", error.message); return; }
          continue; // the network, or the API briefly down: try again
        }
        this.grant = { ...this.grant, ...grant };
        try {
          await this.connectWith(this.grant);
        } catch (error) {
          if (error instanceof SignalingError && error.code === "gone") { this.finish("ended"); return; }
          if (error instanceof SignalingError && error.code === "forbidden") { this.finish("removed"); return; }
          continue;
        }
        if (!planned || before === "reconnecting") this.emit("connection", { state: "reconnected" });
        return;
      }
      if (!FINAL.has(this.state)) this.finish("failed", "Could not reconnect to the meeting.");
    } finally {
      this.reconnecting = false;
    }
  }

  finish(state, detail = "") {
    if (FINAL.has(this.state)) return;
    this.state = state;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    if (this.connection) this.connection.close();
    this.emit("finished", { state, detail });
  }

  async leave() {
    if (FINAL.has(this.state)) return;
    try {
      if (this.connection && this.connection.isOpen) await this.connection.request("leave", {}, 3000);
    } catch { /* leaving anyway */ }
    this.finish("left");
  }

  // -- requests ----------------------------------------------------------------------------

  // Send an action; while reconnecting, wait (bounded) for the new socket first.
  async request(action, data = {}) {
    for (let waited = 0; !(this.connection && this.connection.isOpen) && waited < 15_000; waited += 250) {
      if (FINAL.has(this.state)) break;
      await sleep(250);
    }
    if (!this.connection) throw new SignalingError("offline", "not connected");
    return this.connection.request(action, data);
  }

  // -- events ------------------------------------------------------------------------------

  receive(event) {
    this.seq = Math.max(this.seq, event.seq || 0);
    const data = event.data || {};
    switch (event.event) {
      case "participant.joined":
      case "participant.updated":
      case "participant.left":
        this.roster.apply(data.participant);
        break;
      case "participant.removed":
        this.roster.remove(data.participant_id, event.seq);
        break;
      case "meeting.muted_all":
        for (const p of data.participants || []) this.roster.apply(p);
        break;
      case "meeting.updated":
        if (this.meeting && "locked" in data) this.meeting = { ...this.meeting, locked: data.locked };
        break;
      case "chat.message":
        this.chat.set(data.message.message_id, data.message);
        break;
      case "waiting.joined":
        this.roster.waiting.set(data.participant.participant_id, data.participant);
        break;
      case "waiting.left":
        this.roster.waiting.delete(data.participant_id);
        break;
      case "you.admitted":
        this.admit(data);
        break;
      default:
        break;
    }
    if (this.since && this.since.length < MAX_REPLAY_EVENTS && event.event !== "you.admitted") this.since.push(event);
    this.emit("event", event);
    if (event.event === "meeting.ended") this.finish("ended");
    if (event.event === "you.denied") this.finish("denied");
    if (event.event === "participant.removed" && data.participant_id === this.participantId) this.finish("removed");
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
