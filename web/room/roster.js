// The meeting's participants as this page knows them, kept correct when events cross on the
// wire: a participant state is applied only if its `rev` is newer than the one held, and a
// departure leaves a tombstone so an older state cannot bring someone back (docs/signaling.md).
//
// Someone whose connection dropped stays, shown reconnecting, until their `reconnecting_until`
// (the room times it: `expire`); only a leave, a removal or the window passing takes them
// out. In a webinar an attendee does not see other attendees: `hides(p)` (set by the room)
// says whom this page keeps out.

export class Roster {
  constructor() {
    this.people = new Map(); // participant_id -> participant (admitted: connected or reconnecting)
    this.departed = new Map(); // participant_id -> rev of the departure
    this.waiting = new Map(); // participant_id -> participant (moderators only)
    this.hides = () => false;
  }

  get(participantId) {
    return this.people.get(participantId);
  }

  // Apply one participant state; true when it changed what we hold.
  apply(p) {
    const id = p.participant_id;
    const held = this.people.get(id);
    if (held && held.rev >= p.rev) return false;
    const gone = this.departed.get(id);
    if (gone !== undefined && gone >= p.rev) return false;
    if (p.status !== "admitted" || (!p.connected && !(p.reconnecting_until > 0))) {
      this.people.delete(id);
      this.departed.set(id, p.rev);
      return Boolean(held);
    }
    this.waiting.delete(id);
    if (this.hides(p)) {
      // Not a departure: a later state (an attendee allowed to talk) shows them again.
      this.people.delete(id);
      return Boolean(held);
    }
    this.people.set(id, p);
    this.departed.delete(id);
    return true;
  }

  remove(participantId, rev) {
    const held = this.people.get(participantId);
    if (held && held.rev > rev) return false;
    this.people.delete(participantId);
    this.departed.set(participantId, rev);
    return Boolean(held);
  }

  // The reconnect window of a dropped participant passed: they are gone (unless a newer
  // state, such as their return, came meanwhile).
  expire(participantId, rev) {
    const held = this.people.get(participantId);
    if (!held || held.rev !== rev || held.connected) return false;
    return this.remove(participantId, rev);
  }

  // Drop whoever `hides` now keeps out (this page's own role changed).
  prune() {
    let changed = false;
    for (const [id, p] of this.people) {
      if (this.hides(p)) { this.people.delete(id); changed = true; }
    }
    return changed;
  }

  // A join or rejoin snapshot: what it lists is applied by rev; whoever it leaves out and we
  // hold with an older rev has left meanwhile.
  load(snapshot) {
    const listed = new Set();
    for (const p of snapshot.participants) {
      listed.add(p.participant_id);
      this.apply(p);
    }
    for (const [id, p] of this.people) {
      if (!listed.has(id) && p.rev <= snapshot.seq) this.remove(id, snapshot.seq);
    }
    this.waiting.clear();
    for (const p of snapshot.waiting || []) this.waiting.set(p.participant_id, p);
  }

  // In meeting order (order of first admission, which survives reconnects).
  sorted() {
    return [...this.people.values()].sort((a, b) => a.place - b.place || a.participant_id.localeCompare(b.participant_id));
  }

  // Participants whose connection dropped and who may still come back.
  reconnecting() {
    return this.sorted().filter((p) => !p.connected);
  }

  // Raised hands, first raised first.
  hands() {
    return this.sorted().filter((p) => p.hand).sort((a, b) => a.hand_raised_at - b.hand_raised_at);
  }
}
