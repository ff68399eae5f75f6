"""The slot map rules of media_fleet.sfu.assignment (pure, no aiortc)."""

from media_fleet.sfu.assignment import assign_cameras, assign_stable

EVERYONE = {"a", "b", "c", "d", "e"}
JOINED = ["a", "b", "c", "d", "e"]


def test_join_order_fills_the_slots_without_the_subscriber() -> None:
    assert assign_cameras([None] * 3, "a", [], JOINED, EVERYONE) == ["b", "c", "d"]
    assert assign_cameras([None] * 6, "c", [], JOINED, EVERYONE) == [
        "a", "b", "d", "e", None, None
    ]  # fmt: skip


def test_the_most_recent_speaker_takes_slot_0() -> None:
    assert assign_cameras([None] * 3, "a", ["d"], JOINED, EVERYONE)[0] == "d"
    # the subscriber's own turn does not count: the previous speaker stays in slot 0
    assert assign_cameras([None] * 3, "d", ["d", "c"], JOINED, EVERYONE)[0] == "c"


def test_a_new_speaker_swaps_with_the_old_one_and_thumbnails_stay() -> None:
    before = ["b", "c", "d"]
    assert assign_cameras(before, "a", ["d", "b"], JOINED, EVERYONE) == ["d", "c", "b"]


def test_last_n_drops_the_least_recent_and_newcomers_take_free_slots() -> None:
    before = ["b", "c", "d"]
    # e speaks: it enters slot 0, b (slot 0 before) takes a thumbnail, d (last by join
    # order among the non-speakers) drops out
    assert assign_cameras(before, "a", ["e", "b"], JOINED, EVERYONE) == ["e", "c", "b"]


def test_participants_without_a_camera_get_no_slot() -> None:
    assert assign_cameras([None] * 3, "a", ["b"], JOINED, {"c", "d"}) == ["c", "d", None]
    assert assign_cameras([None] * 2, "a", [], ["a"], {"a"}) == [None, None]
    assert assign_cameras([], "a", [], JOINED, EVERYONE) == []


def test_stable_assignment_keeps_positions() -> None:
    assert assign_stable(["x", "y", None], ["z", "y"]) == ["z", "y", None]
    assert assign_stable([None, None], []) == [None, None]
    assert assign_stable(["x", "y"], ["y", "x"]) == ["x", "y"]
