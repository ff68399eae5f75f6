// The video stage: one tile per participant, in a grid or in speaker view.
//
// The subscribe connection has fixed slots (docs/sfu.md): a slot's <video> is created once per
// track and moved into the tile of whoever the node's slot map says feeds it. Someone else's
// screen share gets a large tile of its own, in either layout.
//
// Speaker view features who speaks, as the node's active-speaker messages say (the node
// detects it from the audio levels the browsers send), preferring people whose video is
// there: the speaker if unmuted, else whoever has video, the most recent speaker first; a
// muted person with the camera off only when nobody else is there. (The node's slot 0 is the
// most recent speaker with a camera track, which may be a camera turned off.)

import { el, icon } from "/room/icons.js";

const HUES = 8;
// How long a slot keeps its last picture while a new track waits for its first packet.
const REPLACE_WAIT_MS = 3000;

function initials(name) {
  const parts = (name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || "?").slice(0, 2);
  return letters.toUpperCase();
}

function hue(id) {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return String(h % HUES);
}

class Tile {
  constructor(participant, { self }) {
    this.id = participant.participant_id;
    this.self = self;
    this.avatar = el("div", { class: "avatar", "aria-hidden": "true", dataset: { hue: hue(this.id) } });
    this.media = el("div", { class: "tile-media" }, this.avatar);
    this.name = el("span", { class: "tile-name" });
    this.mic = el("span", { class: "tile-mic", role: "img" }, icon("micOff"));
    this.hand = el("span", { class: "tile-hand", role: "img", "aria-label": "Hand raised" }, icon("hand"));
    this.quality = el("span", { class: "quality", role: "img", dataset: { level: "unknown" } },
      el("i"), el("i"), el("i"));
    this.label = el("figcaption", { class: "tile-label" }, this.mic, this.name, this.hand, this.quality);
    // A dropped connection: shown over the picture until they are back or the window passes.
    this.reconnecting = el("span", { class: "tile-reconnecting", text: "Reconnecting…", hidden: true });
    this.root = el("figure", { class: "tile", dataset: { participant: this.id } }, this.media, this.reconnecting, this.label);
    if (self) this.root.classList.add("self");
    this.video = null;
  }

  update(p, { speaking }) {
    const label = this.self ? `${p.name} (you)` : p.name;
    this.name.textContent = label;
    this.avatar.textContent = initials(p.name);
    this.mic.hidden = !p.muted;
    this.mic.setAttribute("aria-label", "Microphone off");
    this.hand.hidden = !p.hand;
    const reconnecting = p.connected === false;
    this.reconnecting.hidden = !reconnecting;
    this.root.classList.toggle("reconnecting", reconnecting);
    this.root.classList.toggle("speaking", speaking && !reconnecting);
    this.root.classList.toggle("camera-off", !p.camera || reconnecting);
    this.root.setAttribute("aria-label", `${label}${reconnecting ? ", reconnecting" : ""}${p.muted ? ", muted" : ""}${p.hand ? ", hand raised" : ""}`);
  }

  show(video) {
    if (this.video === video) return;
    if (this.video && this.video.parentNode === this.media) this.video.remove();
    this.video = video;
    if (video) {
      this.media.prepend(video);
      video.play().catch(() => {});
    }
  }
}

// Who a slots message says the video slot `mid` carries (null: nobody, or no message yet).
function carrying(slots, mid) {
  if (!slots) return null;
  const slot = [...(slots.video || []), slots.screen].find((s) => s && String(s.mid) === String(mid));
  return slot ? slot.participant_id || null : null;
}

export class Stage {
  constructor(root, parking, selfId) {
    this.root = root;
    this.parking = parking; // hidden holder for slot videos nobody feeds right now
    this.audioHolder = el("div", { class: "audio-slots", hidden: true });
    parking.append(this.audioHolder);
    this.tiles = new Map();
    this.slotVideos = new Map(); // mid -> <video>
    this.incoming = new Map(); // mid -> {track, show}: the newest track not yet shown
    this.slotAudio = new Map(); // mid -> <audio>
    this.slots = null;
    this.speakerId = null;
    this.spokeAt = new Map(); // participant_id -> when the node last named them the speaker
    this.featuredId = null;
    this.layout = "grid";
    this.selfVideo = el("video", { class: "self-video", muted: true, playsinline: true, autoplay: true, "aria-hidden": "true" });
    this.selfVideo.muted = true;
    this.screenTile = null;
    this.roster = [];
    this.selfId = selfId;
    // Said when nobody is on the stage (a webinar attendee before the presenters arrive).
    this.empty = el("p", { class: "stage-empty", text: "The presenters will appear here." });
  }

  setLayout(layout) {
    this.layout = layout;
    this.render();
  }

  setSelf(participantId, cameraTrack) {
    this.selfId = participantId;
    this.selfVideo.srcObject = cameraTrack ? new MediaStream([cameraTrack]) : null;
    if (cameraTrack) this.selfVideo.play().catch(() => {});
    this.render();
  }

  // A track of the subscribe connection: a slot that exists for the life of the connection.
  addTrack(mid, track) {
    if (track.kind === "audio") {
      let audio = this.slotAudio.get(mid);
      if (!audio) {
        audio = el("audio", { autoplay: true, dataset: { mid } });
        this.slotAudio.set(mid, audio);
        this.audioHolder.append(audio);
      }
      audio.srcObject = new MediaStream([track]);
      audio.play().catch(() => {});
      return;
    }
    let video = this.slotVideos.get(mid);
    if (!video) {
      video = el("video", { class: "remote", autoplay: true, playsinline: true, dataset: { mid } });
      video.muted = true; // sound comes from the audio slots
      this.slotVideos.set(mid, video);
      this.parking.append(video);
    }
    // A rebuilt connection (after a lost node) brings new tracks before their first packet:
    // the slot keeps showing its last picture until the new track has media ("unmute"), or
    // for REPLACE_WAIT_MS at most, so the tile freezes for a moment instead of going black.
    // Unless the new node's slots give the slot to someone else first (setSlots): a picture
    // is never shown on another participant's tile.
    const show = () => {
      const pending = this.incoming.get(mid);
      if (!pending || pending.track !== track) return; // shown already, or a newer track came
      this.incoming.delete(mid);
      video.srcObject = new MediaStream([track]);
      video.play().catch(() => {});
      this.render();
    };
    this.incoming.set(mid, { track, show });
    if (video.srcObject && track.muted) {
      track.addEventListener("unmute", show, { once: true });
      setTimeout(show, REPLACE_WAIT_MS);
    } else {
      show();
    }
  }

  setSlots(message) {
    const before = this.slots;
    this.slots = message;
    for (const [mid, pending] of [...this.incoming]) {
      if (carrying(before, mid) !== carrying(message, mid)) pending.show();
    }
    this.render();
  }

  setSpeaker(participantId) {
    this.speakerId = participantId;
    if (participantId) this.spokeAt.set(participantId, performance.now());
    this.render();
  }

  setRoster(people) {
    this.roster = people;
    this.render();
  }

  // The participant each camera slot carries, and the screen share's mid.
  feeds() {
    const byParticipant = new Map();
    let featured = null;
    let screen = null;
    if (this.slots) {
      for (const slot of this.slots.video || []) {
        if (!slot.participant_id) continue;
        byParticipant.set(slot.participant_id, slot.mid);
        if (slot.slot === 0) featured = slot.participant_id;
      }
      if (this.slots.screen && this.slots.screen.participant_id) screen = this.slots.screen;
    }
    return { byParticipant, featured, screen };
  }

  render() {
    const { byParticipant, featured, screen } = this.feeds();
    const present = new Set();
    const used = new Set();
    const ordered = [];
    for (const p of this.roster) {
      present.add(p.participant_id);
      let tile = this.tiles.get(p.participant_id);
      if (!tile) {
        tile = new Tile(p, { self: p.participant_id === this.selfId });
        this.tiles.set(p.participant_id, tile);
      }
      tile.update(p, { speaking: this.speakerId === p.participant_id });
      let video = null;
      if (tile.self) {
        video = p.camera && this.selfVideo.srcObject ? this.selfVideo : null;
      } else if (p.camera && p.connected !== false && byParticipant.has(p.participant_id)) {
        video = this.slotVideos.get(byParticipant.get(p.participant_id)) || null;
      }
      if (video) used.add(video);
      tile.show(video);
      ordered.push(tile);
    }
    for (const [id, tile] of this.tiles) {
      if (!present.has(id)) { tile.show(null); tile.root.remove(); this.tiles.delete(id); }
    }
    this.renderScreen(screen, used);
    for (const video of this.slotVideos.values()) {
      if (!used.has(video) && video.parentNode !== this.parking) this.parking.append(video);
    }

    // Featured tile: a screen share first; in speaker view the speaker slot's participant
    // (or ourselves when alone).
    let feature = null;
    if (this.screenTile) feature = this.screenTile.root;
    else if (this.layout === "speaker") {
      const id = this.pickFeatured(byParticipant, featured);
      feature = id && this.tiles.has(id) ? this.tiles.get(id).root : null;
    }
    this.featuredId = feature && !this.screenTile ? feature.dataset.participant : null;
    const nodes = ordered.map((t) => t.root);
    if (this.screenTile) nodes.unshift(this.screenTile.root);
    for (const node of nodes) node.classList.toggle("featured", node === feature);
    if (feature) nodes.splice(nodes.indexOf(feature), 1);
    const list = feature ? [feature, ...nodes] : nodes;
    if (list.length === 0) list.push(this.empty);
    // Re-append only when the order changed: moving a playing video is cheap but not free.
    const current = [...this.root.children];
    if (current.length !== list.length || current.some((node, i) => node !== list[i])) this.root.replaceChildren(...list);
    for (const video of used) if (video.paused) video.play().catch(() => {});
    this.root.dataset.layout = feature ? "featured" : "grid";
    this.root.dataset.count = String(Math.min(ordered.length + (this.screenTile ? 1 : 0), 16));
  }

  // Who speaker view puts on the big tile (see the top of this file); ourselves when alone.
  pickFeatured(byParticipant, slotZero) {
    const others = this.roster.filter((p) => p.participant_id !== this.selfId && p.connected !== false);
    if (others.length === 0) return this.roster.length ? this.selfId : null;
    const score = (p) => {
      const id = p.participant_id;
      const speaking = id === this.speakerId && !p.muted;
      const video = Boolean(p.camera) && byParticipant.has(id);
      return (speaking ? 4 : 0) + (video ? 2 : 0) + (p.muted ? 0 : 1);
    };
    const ranked = others.map((p, index) => ({
      id: p.participant_id,
      score: score(p),
      spoke: this.spokeAt.get(p.participant_id) || 0,
      // Held on a tie, so the big tile does not flip between equals.
      held: p.participant_id === this.featuredId ? 1 : 0,
      slotZero: p.participant_id === slotZero ? 1 : 0,
      index,
    }));
    ranked.sort((a, b) => b.score - a.score || b.spoke - a.spoke || b.held - a.held || b.slotZero - a.slotZero || a.index - b.index);
    return ranked[0].id;
  }

  renderScreen(screen, used) {
    const video = screen ? this.slotVideos.get(screen.mid) : null;
    if (!video) {
      if (this.screenTile) { this.screenTile.show(null); this.screenTile = null; }
      return;
    }
    const sharer = this.roster.find((p) => p.participant_id === screen.participant_id);
    const name = sharer ? sharer.name : "Someone";
    if (!this.screenTile) {
      this.screenTile = new Tile({ participant_id: `screen:${screen.participant_id}`, name }, { self: false });
      this.screenTile.root.classList.add("screen-tile");
    }
    const label = `${name}'s screen`;
    this.screenTile.name.textContent = label;
    this.screenTile.root.setAttribute("aria-label", label);
    this.screenTile.mic.hidden = true;
    this.screenTile.hand.hidden = true;
    this.screenTile.quality.hidden = true;
    this.screenTile.root.dataset.participant = screen.participant_id;
    this.screenTile.root.dataset.screen = "true";
    used.add(video);
    this.screenTile.show(video);
  }

  // Quality per participant: {participantId: {level, text}} plus our own.
  setQuality(byParticipant) {
    for (const [id, tile] of this.tiles) {
      const q = byParticipant.get(id);
      tile.quality.hidden = !q;
      if (!q) continue;
      tile.quality.dataset.level = q.level;
      tile.quality.setAttribute("aria-label", `Connection ${q.level}: ${q.text}`);
      tile.quality.title = `Connection ${q.level}: ${q.text}`;
    }
  }

  midOf(participantId) {
    return this.feeds().byParticipant.get(participantId) || null;
  }
}
