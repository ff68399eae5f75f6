// The breakout rooms in a session's summary (web/summary.js): who was in which room and when
// (each attendee's `rooms` stays), per room and per person, and the room of chat lines.

import { h } from "/collab/dom.js";

const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

function time(iso) {
  return iso ? h("time", { datetime: iso, text: timeOnly.format(new Date(iso)) }) : h("span", { text: "still there" });
}

function length(fromIso, toIso) {
  if (!toIso) return "";
  const s = Math.max(0, Math.round((new Date(toIso) - new Date(fromIso)) / 1000));
  const minutes = Math.floor(s / 60);
  return minutes ? ` (${minutes} min ${s % 60} s)` : ` (${s} s)`;
}

export function usedRooms(summary) {
  return Array.isArray(summary.rooms) && summary.rooms.length > 0
    && summary.attendance.some((a) => (a.rooms || []).length > 0);
}

// One attendee's stays, for their row of the attendance table.
export function roomStays(attendee) {
  const stays = attendee.rooms || [];
  if (!stays.length) return h("span", { class: "muted", text: "Main room only" });
  return h("ul", { class: "room-stays", "aria-label": `${attendee.name}: breakout rooms` },
    stays.map((s) => h("li", {}, h("strong", { text: s.room }), " ", time(s.from), " – ", time(s.to))));
}

// Per room: who was in it, when, in order of arrival.
export function renderBreakouts(summary, section) {
  const byRoom = new Map(summary.rooms.map((r) => [r.room_id, []]));
  for (const a of summary.attendance) {
    for (const stay of a.rooms || []) {
      if (!byRoom.has(stay.room_id)) byRoom.set(stay.room_id, []);
      byRoom.get(stay.room_id).push({ name: a.name, ...stay });
    }
  }
  const names = new Map(summary.rooms.map((r) => [r.room_id, r.name]));
  section.append(h("ul", { class: "summary-rooms" }, [...byRoom].map(([roomId, stays]) => {
    stays.sort((x, y) => x.from.localeCompare(y.from));
    const people = new Set(stays.map((s) => s.name)).size;
    return h("li", { class: "collab-card" },
      h("h3", { text: `${names.get(roomId) || (stays[0] && stays[0].room) || roomId} · ${people} ${people === 1 ? "person" : "people"}` }),
      stays.length
        ? h("ul", { class: "room-stays" }, stays.map((s) => h("li", {}, h("strong", { text: s.name }), " ", time(s.from), " – ", time(s.to), length(s.from, s.to))))
        : h("p", { class: "muted small", text: "Nobody went in." }));
  })));
  section.hidden = false;
  const download = document.querySelector('[data-download="rooms"]'); // summary.csv?part=rooms
  if (download) download.hidden = false;
}

// "Room 1" before a chat line sent in a breakout room.
export function roomTag(message) {
  return message.room ? h("span", { class: "summary-room-tag", text: message.room }) : null;
}
