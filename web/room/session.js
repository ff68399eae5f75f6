// One participant's place in a meeting over signaling: the join grant, the socket, the roster,
// and staying connected.
//
// - Reconnecting. When the socket drops (network, the 10-minute idle timeout, the 2-hour cap)
//   or stalls (see the heartbeat in /signaling.js), or the browser says it went offline, the
//   session rejoins silently with the latest resume token: same participant, same role and
//   place, state re-loaded from the new snapshot. A lost answer to /rejoin is retried with the
//   same token (the server answers the same again); a network error or 5xx is retried, a 401
//   twice in a row is final. The `online` event cuts the back-off short.
// - Requests that change state survive a reconnect: each keeps its request id, a request whose
//   outcome is unknown (sent into a socket that then stalled or closed, or unanswered) is sent
//   again once on the next socket with the same id, and `duplicate_request` on such a retry
//   means the first copy took effect. Its promise stays pending ("sending…") until the outcome
//   is known, so nothing is reported "not sent" that may still arrive.
// - Reloads. The resume credential (session id, participant id, resume token, ws_url, when it
//   was saved, and whether the microphone and camera were on) lives in the tab's sessionStorage
//   under "townhall.resume.<meeting id>", never in a URL or a log, rewritten at every rotation.
//   `MeetingSession.resume(meetingId)` brings a reloaded or reopened tab back within the
//   reconnect window (2 minutes) as the same participant.

import { SignalingConnection, SignalingError, requestId } from "/signaling.js";
import { callApi } from "/room/http.js";
import { Roster } from "/room/roster.js";

const PLANNED_RECONNECT_MS = 110 * 60_000; // before the 2-hour connection cap
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];
const MAX_RECONNECT_ATTEMPTS = 40;
const OFFLINE_WAIT_MS = 30_000; // while the browser says offline, try at least this often
const JOIN_TIMEOUT_MS = 10_000;
const MAX_REPLAY_EVENTS = 1000; // about five minutes, then we give up and say so
const SEEN_EVENTS = 4096; // event ids kept for dropping repeats: minutes of a busy meeting
// The server keeps a dropped participant's place this long (docs/signaling.md).
export const RECONNECT_WINDOW_MS = 120_000;
const RESUME_MARGIN_MS = 5_000; // a reload this close to the window's end joins afresh
const ALIVE_SAVE_MS = 10_000; // how often a connected page refreshes the saved time
const RESUME_TIMEOUT_MS = 15_000; // how long a reloaded page tries /rejoin before giving up
const LOCK_WAIT_MS = 3_000; // a reloaded page waits this long for the old page's lock
// Request ids are remembered for 10 minutes: an older request is never sent again.
const MAX_REQUEST_AGE_MS = 9 * 60_000;
const MAX_SENDS = 3;
const STORAGE_PREFIX = "townhall.resume.";
const LOCK_PREFIX = "townhall.meeting.";

// Reads and negotiations tied to one socket: a fresh id each time and no retry here (their
// callers, such as the media repair, retry themselves). Everything else changes state and
// goes through the outbox.
const CONNECTION_BOUND = new Set(["join", "leave", "ping", "media", "media_publish", "media_subscribe", "media_answer", "media_stalled", "wb_history"]);

// Terminal states: nothing to reconnect to.
const FINAL = new Set(["ended", "removed", "denied", "left", "failed"]);

export class MeetingSession {
  static resumeOutcome = null; // why the last resume() gave what it gave (see resume)

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
    // Ids of the events seen in this session, oldest first (see alreadyHave).
    this.seen = new Set();
    this.seenSession = null;
    this.listeners = new Map();
    this.connection = null;
    this.ready = false; // this.connection has answered its join
    this.timers = [];
    this.outbox = new Map(); // request id -> entry (state-changing requests not yet settled)
    this.devices = { micOn: false, cameraOn: false }; // what to restore after a reload
    this.resumed = false;
    this.lock = null;
    this.wakers = new Set();
    this.onOnline = () => this.networkBack();
    this.onOffline = () => this.networkGone();
    this.onPageHide = () => { if (this.connected) this.save(); };
    this.onVisible = () => { if (document.visibilityState === "visible" && this.connected) this.connection.probe(); };
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

  // The socket is up and has joined (not reconnecting, not stalled).
  get connected() {
    return this.ready && !FINAL.has(this.state) && this.state !== "reconnecting" && Boolean(this.connection && this.connection.isOpen);
  }

  // -- resuming after a reload ---------------------------------------------------------------

  // A reloaded (or crashed and reopened) tab, within the reconnect window: the same
  // participant again, silently. Resolves with a started session (its join reply in
  // `session.reply`, the saved microphone and camera state in `session.devices`), or null when
  // there is nothing to resume, the window has passed, another tab holds this participant,
  // or the rejoin failed; then the page joins the normal way (the same guest identity or
  // account makes the same participant), except when another tab has it. Why it was null is in
  // `MeetingSession.resumeOutcome`: "nothing", "expired", "elsewhere" (another tab of this
  // browser is in the meeting as this participant), "ended", "refused" (removed, or the token
  // is not known), "failed" (the network); "resumed" when it worked.
  static async resume(meetingId) {
    const outcome = await MeetingSession.tryResume(meetingId);
    MeetingSession.resumeOutcome = outcome instanceof MeetingSession ? "resumed" : outcome;
    return outcome instanceof MeetingSession ? outcome : null;
  }

  static async tryResume(meetingId) {
    const record = readRecord(meetingId);
    if (!record) return "nothing";
    if (!(Date.now() - record.saved_at < RECONNECT_WINDOW_MS - RESUME_MARGIN_MS)) return "expired";
    const lock = await takeLock(lockName(meetingId, record.participant_id), { waitMs: LOCK_WAIT_MS });
    if (lock === false) return "elsewhere"; // another tab of this browser is in the meeting as us
    const session = new MeetingSession({
      meeting_id: meetingId,
      session_id: record.session_id,
      participant_id: record.participant_id,
      resume_token: record.resume_token,
      ws_url: record.ws_url,
    });
    session.resumed = true;
    session.devices = { micOn: Boolean(record.devices && record.devices.micOn), cameraOn: Boolean(record.devices && record.devices.cameraOn) };
    session.holdLock(lock);
    try {
      const deadline = Date.now() + RESUME_TIMEOUT_MS;
      const outcome = await session.rejoinGrant(() => Date.now() < deadline);
      if (outcome !== "ok") {
        if (outcome !== "retry") clearRecord(meetingId); // ended, removed or refused: gone for good
        session.abandon();
        return { ended: "ended", removed: "refused", refused: "refused" }[outcome] || "failed";
      }
      session.reply = await session.start();
      return session;
    } catch {
      session.abandon();
      return "failed";
    }
  }

  // What a previous page of this tab saved for this meeting, or null: {devices, savedAt,
  // withinWindow}. After the window the page rejoins through the normal join, with these
  // devices.
  static saved(meetingId) {
    const record = readRecord(meetingId);
    if (!record) return null;
    return {
      devices: { ...record.devices },
      savedAt: record.saved_at,
      withinWindow: Date.now() - record.saved_at < RECONNECT_WINDOW_MS - RESUME_MARGIN_MS,
    };
  }

  // Tell the session what the microphone and camera start as (the join page's choice), so a
  // reload restores them. The session also follows our own mute and camera requests.
  setDevices({ micOn, cameraOn }) {
    this.devices = { micOn: Boolean(micOn), cameraOn: Boolean(cameraOn) };
    this.save();
  }

  save() {
    if (FINAL.has(this.state) || !this.grant.resume_token) return;
    writeRecord(this.meetingId, {
      session_id: this.grant.session_id,
      participant_id: this.participantId,
      resume_token: this.grant.resume_token,
      ws_url: this.grant.ws_url,
      saved_at: Date.now(),
      devices: this.devices,
    });
  }

  // -- connecting --------------------------------------------------------------------------

  // First connection: resolves with the join reply (a snapshot, or {status: "waiting"}).
  async start() {
    if (!this.lock) this.holdLock(await takeLock(lockName(this.meetingId, this.participantId), { steal: true }));
    this.save();
    let reply;
    try {
      reply = await this.connectWith(this.grant);
    } catch (error) {
      this.abandon(); // the page may try again with a new session
      throw error;
    }
    this.keepAlive();
    return reply;
  }

  async connectWith(grant) {
    const connection = new SignalingConnection(grant.ws_url, grant.meeting_id || this.meetingId, grant.join_token);
    connection.onEvent = (event) => { if (this.connection === connection) this.receive(event); };
    connection.onClose = (info) => { if (this.connection === connection) this.dropped(info); };
    connection.onStall = () => { if (this.connection === connection) this.dropped({ stalled: true }); };
    await connection.open();
    const previous = this.connection;
    const wasReady = this.ready;
    // Events can arrive on the new socket before its join reply: they are applied (by rev and
    // message id, so the snapshot after them does no harm).
    this.connection = connection;
    this.ready = false;
    let reply;
    try {
      reply = await connection.request("join", {}, JOIN_TIMEOUT_MS);
    } catch (error) {
      connection.close(); // the next attempt opens another
      if (this.connection === connection) {
        // A planned reconnect keeps the socket it had while that one still works.
        this.connection = previous;
        this.ready = Boolean(previous && previous.isOpen && wasReady);
        if (this.ready) this.flush();
      }
      throw error;
    }
    // Only after the join (the server closes it then too: one participant, one socket).
    // Closed before, its $disconnect would tell everyone we dropped.
    if (previous && previous !== connection) previous.close();
    this.connectedAt = Date.now();
    this.ready = true;
    if (reply.status === "waiting") {
      this.state = "waiting";
      this.meeting = reply.meeting;
      this.you = reply.you;
      this.emit("waiting", reply);
    } else {
      this.admit(reply);
    }
    this.save();
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
    this.flush();
  }

  keepAlive() {
    // The heartbeat's pings (/signaling.js) keep the 10-minute idle timer alive too.
    this.timers.push(setInterval(() => {
      if (!FINAL.has(this.state) && this.state !== "reconnecting" && Date.now() - this.connectedAt > PLANNED_RECONNECT_MS) {
        this.reconnect({ planned: true });
      }
    }, 60_000));
    this.timers.push(setInterval(() => { if (this.connected) this.save(); }, ALIVE_SAVE_MS));
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    window.addEventListener("pagehide", this.onPageHide);
    document.addEventListener("visibilitychange", this.onVisible);
  }

  dropped() {
    if (FINAL.has(this.state)) return;
    this.reconnect({ planned: false });
  }

  // The browser says the network is gone: the socket cannot be trusted, whatever its state.
  networkGone() {
    if (FINAL.has(this.state) || !this.connection) return;
    if (this.reconnecting) return;
    this.connection.stall(); // -> onStall -> dropped -> reconnect
  }

  // The network is back: try now instead of at the next back-off step, and check a socket
  // that looks open (network changes often leave it dead).
  networkBack() {
    if (FINAL.has(this.state)) return;
    if (this.wakers.size) for (const wake of [...this.wakers]) wake();
    else if (this.reconnecting) this.networkReturned = true; // mid-attempt: skip the next wait
    if (this.connected) this.connection.probe();
  }

  // Wait `ms`, or less if the network comes back.
  pause(ms) {
    if (this.networkReturned) {
      this.networkReturned = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); this.wakers.delete(done); resolve(); };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  // One POST /rejoin with the current resume token. "ok" (this.grant now holds the next
  // token, saved before anything can lose it), "ended" (410), "removed" (403), "unauthorized"
  // (401), "refused" (404 or another 4xx: final), or "retry" (a network error, a lost answer, a
  // 5xx: the same request may be sent again, and the server answers it the same).
  async rejoinOnce() {
    try {
      const grant = await callApi(`/api/meetings/${encodeURIComponent(this.meetingId)}/rejoin`, {
        method: "POST",
        body: {
          session_id: this.grant.session_id,
          participant_id: this.participantId,
          resume_token: this.grant.resume_token,
        },
      });
      this.grant = { ...this.grant, ...grant };
      this.save();
      return "ok";
    } catch (error) {
      const status = error.status || 0;
      if (status === 410) return "ended";
      if (status === 403) return "removed";
      if (status === 401) return "unauthorized";
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) return "refused";
      return "retry";
    }
  }

  // /rejoin until it answers, while `more()` says so: a 401 once may be a read that lagged a
  // write, so it is tried again; a second 401 in a row is final ("refused").
  async rejoinGrant(more) {
    let unauthorized = 0;
    for (let attempt = 0; ; attempt += 1) {
      if (attempt > 0) {
        if (!more()) return "retry";
        await this.pause(BACKOFF_MS[Math.min(attempt - 1, BACKOFF_MS.length - 1)]);
        if (!more()) return "retry";
      }
      const outcome = await this.rejoinOnce();
      if (outcome === "unauthorized") {
        unauthorized += 1;
        if (unauthorized >= 2) return "refused";
        continue;
      }
      unauthorized = 0;
      if (outcome !== "retry") return outcome;
    }
  }

  // Rejoin with backoff. A planned reconnect (the 2-hour cap) is make-before-break and quiet.
  async reconnect({ planned }) {
    if (this.reconnecting) {
      // The socket a quiet (planned) reconnect meant to keep has gone meanwhile: say so.
      if (!planned) this.showReconnecting();
      return;
    }
    this.reconnecting = true;
    this.announced = false;
    if (!planned) this.showReconnecting();
    let unauthorized = 0;
    try {
      for (let attempt = 0; attempt < MAX_RECONNECT_ATTEMPTS && !FINAL.has(this.state);) {
        if (attempt > 0 || !planned) await this.pause(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]);
        // Offline: no attempt is worth making (nor counting) until the network is back.
        while (navigator.onLine === false && !FINAL.has(this.state)) await this.pause(OFFLINE_WAIT_MS);
        if (FINAL.has(this.state)) return;
        attempt += 1;
        const outcome = await this.rejoinOnce();
        if (outcome === "ended") { this.finish("ended"); return; }
        if (outcome === "removed") { this.finish("removed"); return; }
        if (outcome === "refused") { this.finish("failed", "Could not rejoin the meeting."); return; }
        if (outcome === "unauthorized") {
          unauthorized += 1;
          if (unauthorized >= 2) { this.finish("failed", "Could not rejoin the meeting."); return; }
          continue;
        }
        unauthorized = 0;
        if (outcome !== "ok") continue;
        try {
          await this.connectWith(this.grant);
        } catch (error) {
          if (error instanceof SignalingError && error.code === "gone") { this.finish("ended"); return; }
          if (error instanceof SignalingError && error.code === "forbidden") { this.finish("removed"); return; }
          continue;
        }
        if (this.announced) this.emit("connection", { state: "reconnected" });
        return;
      }
      if (!FINAL.has(this.state)) this.finish("failed", "Could not reconnect to the meeting.");
    } finally {
      this.reconnecting = false;
    }
  }

  showReconnecting() {
    if (this.announced || FINAL.has(this.state)) return;
    this.announced = true;
    this.state = "reconnecting";
    this.ready = false;
    this.emit("connection", { state: "reconnecting" });
  }

  finish(state, detail = "") {
    if (FINAL.has(this.state)) return;
    this.state = state;
    this.ready = false;
    this.stopTimers();
    clearRecord(this.meetingId); // a reload after this joins afresh
    if (this.connection) this.connection.close();
    this.releaseLock();
    for (const entry of [...this.outbox.values()]) {
      this.settle(entry, null, new SignalingError(entry.maybeSent ? "unconfirmed" : "offline",
        entry.maybeSent ? "not confirmed before the connection ended" : "not connected", { maybeSent: entry.maybeSent }));
    }
    this.emit("finished", { state, detail });
  }

  stopTimers() {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    for (const wake of this.wakers) wake();
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    window.removeEventListener("pagehide", this.onPageHide);
    document.removeEventListener("visibilitychange", this.onVisible);
  }

  // A session that never started (a failed resume): drop it without a word.
  abandon() {
    this.state = "failed";
    this.stopTimers();
    if (this.connection) this.connection.close();
    this.releaseLock();
  }

  // Leave on purpose. options: {successor} (a host leaving: who takes the host role).
  async leave(options = {}) {
    if (FINAL.has(this.state)) return;
    const data = options && options.successor ? { successor: options.successor } : {};
    try {
      if (this.connection && this.connection.isOpen) await this.connection.request("leave", data, 3000);
    } catch { /* leaving anyway */ }
    this.finish("left");
  }

  // -- one tab per participant ---------------------------------------------------------------

  // While the session runs it holds a Web Lock named after the participant. A fresh join takes
  // it over from another tab of this browser (which then stops, instead of reconnecting and
  // pushing this one out); a resume waits for it briefly (a reload: the old page lets go as it
  // unloads) and gives up if another tab keeps it (a duplicated tab copies sessionStorage).
  holdLock(lock) {
    if (!lock) return;
    this.lock = lock;
    lock.lost.then(() => {
      if (this.lock === lock && !FINAL.has(this.state)) this.finish("failed", "You joined this meeting from another tab or window.");
    });
  }

  releaseLock() {
    if (this.lock) this.lock.release();
    this.lock = null;
  }

  // -- requests ----------------------------------------------------------------------------

  // Send an action. Reads and negotiations wait (bounded) for a socket and fail fast.
  // State-changing actions go through the outbox: they wait for the socket however long the
  // reconnect takes, keep their request id across retries, and settle only once the outcome is
  // known. options: {id} (the caller's own request id, from requestId() in /signaling.js), and
  // {id, retry: true, since} to send again a request whose outcome was unknown (a "Retry"
  // button; `since`: when it was first sent): the server drops the copy if the first arrived,
  // and that counts as sent. Request ids are remembered for 10 minutes, so an older one is
  // not sent again (it settles "unconfirmed").
  async request(action, data = {}, options = {}) {
    if (action === "mute" && !data.participant_id) this.noteDevices({ micOn: !data.muted });
    if (action === "camera" && !data.participant_id) this.noteDevices({ cameraOn: Boolean(data.on) });
    if (CONNECTION_BOUND.has(action)) {
      for (let waited = 0; !this.connected && waited < 15_000; waited += 250) {
        if (FINAL.has(this.state)) break;
        await sleep(250);
      }
      if (!this.connection) throw new SignalingError("offline", "not connected");
      return this.connection.request(action, data);
    }
    if (FINAL.has(this.state)) throw new SignalingError("offline", "not connected");
    const id = options.id || requestId();
    const existing = this.outbox.get(id);
    if (existing) return existing.promise;
    const entry = { id, action, data, sends: 0, createdAt: options.since || Date.now(), maybeSent: Boolean(options.retry), busy: false };
    entry.promise = new Promise((resolve, reject) => { entry.resolve = resolve; entry.reject = reject; });
    this.outbox.set(id, entry);
    this.dispatch(entry);
    return entry.promise;
  }

  // Send every unsettled request on the (new) socket.
  flush() {
    for (const entry of [...this.outbox.values()]) this.dispatch(entry);
  }

  async dispatch(entry) {
    if (entry.busy || !this.outbox.has(entry.id) || this.state !== "admitted" || !this.connected) return;
    const connection = this.connection;
    if (entry.maybeSent && (Date.now() - entry.createdAt > MAX_REQUEST_AGE_MS || entry.sends >= MAX_SENDS)) {
      // Too late to send again safely, or sent enough: say we do not know.
      this.settle(entry, null, new SignalingError("unconfirmed", "no answer; it may have been sent", { maybeSent: true }));
      return;
    }
    entry.busy = true;
    entry.sends += 1;
    let reply;
    let failure;
    try {
      reply = await connection.request(entry.action, entry.data, { id: entry.id });
    } catch (error) {
      failure = error;
    } finally {
      entry.busy = false;
    }
    if (!failure) { this.settle(entry, reply); return; }
    if (failure.fromServer) {
      // A copy arrived before (this one was a retry): the first took effect.
      if (failure.code === "duplicate_request" && entry.maybeSent) this.settle(entry, { duplicate: true });
      // The database was busy: nothing was decided, so the same request may go again.
      else if (failure.code === "unavailable" && entry.sends < MAX_SENDS) {
        await sleep(1000 * entry.sends);
        this.dispatch(entry);
      } else this.settle(entry, null, failure);
      return;
    }
    if (failure.maybeSent) entry.maybeSent = true;
    else entry.sends -= 1; // it never left the page
    // Unanswered on a socket that still works: ask again on it now (same id). Otherwise the
    // next socket's flush sends it.
    if (failure.code === "timeout" && this.connection === connection && this.connected) this.dispatch(entry);
    else if (this.connection !== connection && this.connected) this.dispatch(entry);
  }

  settle(entry, reply, error) {
    if (!this.outbox.has(entry.id)) return;
    this.outbox.delete(entry.id);
    if (error) entry.reject(error);
    else entry.resolve(reply);
  }

  noteDevices(change) {
    this.devices = { ...this.devices, ...change };
    if (this.ready) this.save();
  }

  // -- events ------------------------------------------------------------------------------

  // Events are delivered at least once (a retried outbox batch can bring one again), each with
  // an id unique in its session: a repeat is dropped before anything reacts to it. Commits can
  // land out of seq order, so "older than the newest" is not a repeat; only the same id is.
  alreadyHave(event) {
    const id = event.event_id;
    if (typeof id !== "string") return false;
    const session = this.grant ? this.grant.session_id : null;
    if (session !== this.seenSession) {
      this.seen.clear();
      this.seenSession = session;
    }
    if (this.seen.has(id)) return true;
    this.seen.add(id);
    if (this.seen.size > SEEN_EVENTS) this.seen.delete(this.seen.values().next().value);
    return false;
  }

  receive(event) {
    if (this.alreadyHave(event)) return;
    this.seq = Math.max(this.seq, event.seq || 0);
    const data = event.data || {};
    switch (event.event) {
      case "participant.joined":
      case "participant.updated":
      case "participant.left":
        this.roster.apply(data.participant);
        if (data.by && data.by !== this.participantId) this.followModerator(data.participant);
        break;
      case "participant.removed":
        this.roster.remove(data.participant_id, event.seq);
        break;
      case "meeting.muted_all":
        for (const p of data.participants || []) {
          this.roster.apply(p);
          this.followModerator(p);
        }
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

  // A moderator turned our microphone or camera off (never on): a reload keeps them off.
  followModerator(p) {
    if (!p || p.participant_id !== this.participantId) return;
    if (p.muted && this.devices.micOn) this.noteDevices({ micOn: false });
    if (!p.camera && this.devices.cameraOn) this.noteDevices({ cameraOn: false });
  }
}

// -- the resume record (sessionStorage) ------------------------------------------------------

function recordKey(meetingId) {
  return `${STORAGE_PREFIX}${meetingId}`;
}

function readRecord(meetingId) {
  try {
    const record = JSON.parse(window.sessionStorage.getItem(recordKey(meetingId)) || "null");
    if (!record || typeof record !== "object") return null;
    const fields = ["session_id", "participant_id", "resume_token", "ws_url"];
    if (!fields.every((name) => typeof record[name] === "string" && record[name]) || typeof record.saved_at !== "number") return null;
    return record;
  } catch {
    return null; // storage disabled, or not ours
  }
}

function writeRecord(meetingId, record) {
  try { window.sessionStorage.setItem(recordKey(meetingId), JSON.stringify(record)); } catch { /* disabled: no resume */ }
}

function clearRecord(meetingId) {
  try { window.sessionStorage.removeItem(recordKey(meetingId)); } catch { /* disabled */ }
}

// -- Web Locks ---------------------------------------------------------------------------------

function lockName(meetingId, participantId) {
  return `${LOCK_PREFIX}${meetingId}.${participantId}`;
}

// {release(), lost: Promise (resolves if another tab takes the lock)}; false when it could not
// be had within waitMs; null where the browser has no Web Locks.
function takeLock(name, { steal = false, waitMs = 0 } = {}) {
  if (!navigator.locks || typeof navigator.locks.request !== "function") return Promise.resolve(null);
  return new Promise((resolve) => {
    let granted = false;
    let release;
    let markLost;
    const held = new Promise((done) => { release = done; });
    const lost = new Promise((done) => { markLost = done; });
    const options = steal ? { steal: true } : { signal: AbortSignal.timeout(Math.max(1, waitMs)) };
    navigator.locks.request(name, options, () => {
      granted = true;
      resolve({ release: () => release(), lost });
      return held;
    }).then(() => {}, () => {
      if (granted) markLost(); // taken over by another tab (steal)
      else resolve(false); // not granted in time
    });
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
