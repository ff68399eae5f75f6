// The meeting's participants as this page knows them, kept correct when events cross on the
// wire: a participant state is applied only if its `rev` is newer than the one held, and a
// departure leaves a tombstone so an older state cannot bring someone back (docs/signaling.md).

export class Roster {
  constructor() {
    this.people = new Map(); // participant_id -> participant (admitted and connected)
    this.departed = new Map(); // participant_id -> rev of the departure
    this.waiting = new Map(); // participant_id -> participant (moderators only)
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
    if (p.status !== "admitted" || !p.connected) {
      this.people.delete(id);
      this.departed.set(id, p.rev);
      return Boolean(held);
    }
    this.people.set(id, p);
    this.departed.delete(id);
    this.waiting.delete(id);
    return true;
  }

  remove(participantId, rev) {
    const held = this.people.get(participantId);
    if (held && held.rev > rev) return false;
    this.people.delete(participantId);
    this.departed.set(participantId, rev);
    return Boolean(held);
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

  // Raised hands, first raised first.
  hands() {
    return this.sorted().filter((p) => p.hand).sort((a, b) => a.hand_raised_at - b.hand_raised_at);
  }
}
