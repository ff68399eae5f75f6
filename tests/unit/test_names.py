"""Issue 9, item 7: names and titles refuse invisible and reordering characters, and an
Idempotency-Key must match in full."""

from __future__ import annotations

import pytest

from townhall.api import idempotency
from townhall.auth.accounts import clean_name
from townhall.errors import InvalidInput

REFUSED = [
    ("DEL", "Ann\x7f"),
    ("C1 CSI", "Ann\x9b31m"),
    ("NEL", "Ann\x85Lee"),  # str.split() would have made it a space
    ("information separator", "Ann\x1fLee"),
    ("NUL", "Ann\x00"),
    ("ESC", "\x1b[2JAnn"),
    ("right-to-left override", "\u202eAnn"),
    ("left-to-right isolate", "Ann\u2066gpj.exe"),
    ("right-to-left mark", "\u200fAnn"),
    ("zero-width space", "A\u200bnn"),
    ("zero-width only", "\u200b\u200b"),
    ("joiners only", "\u200d\u200c"),
    ("BOM", "\ufeffAnn"),
    ("soft hyphen", "An\u00adn"),
    ("Arabic letter mark", "\u061cAnn"),
    ("tag character", "Ann\U000e0041"),
    ("private use", "Ann\ue000"),
    ("unassigned", "Ann\U000e0080"),
    ("unassigned BMP", "Ann\u0378"),
    ("lone surrogate", "Ann\ud800"),
    ("Hangul filler only", "\u3164"),
    ("blank Braille only", "\u2800 \u2800"),
    ("combining marks only", "\u0301\u0301"),
    ("spaces only", " \t\n "),
    ("empty", ""),
    ("too long", "a" * 81),
]


@pytest.mark.parametrize(("why", "name"), REFUSED, ids=[w for w, _ in REFUSED])
def test_names_are_refused(why: str, name: str) -> None:
    with pytest.raises(InvalidInput):
        clean_name(name)


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("  Ann \t Lee\n", "Ann Lee"),  # pasted whitespace is folded, as before
        ("Zoë Ångström", "Zoë Ångström"),
        ("Zoe\u0308", "Zoe\u0308"),  # a combining mark on a letter
        ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", None),  # Persian needs ZWNJ
        ("\u0915\u094d\u200d\u0937", None),  # Devanagari with ZWJ
        ("👩\u200d💻 Dev", None),  # an emoji ZWJ sequence
        ("👍🏽", None),
        ("\u05e9\u05e8\u05d4 Cohen", None),  # right-to-left script without overrides
        ("李小龍", None),
    ],
)
def test_real_names_pass(name: str, cleaned: str | None) -> None:
    assert clean_name(name) == (cleaned if cleaned is not None else name)


def test_a_title_is_checked_the_same_way_with_its_own_field_name_and_limit() -> None:
    assert clean_name("Q3 review", "title", 200) == "Q3 review"
    with pytest.raises(InvalidInput, match="title"):
        clean_name("Q3\u202e review", "title", 200)


@pytest.mark.parametrize("key", ["abcdefgh\n", "abcdefgh\r\n", "abc", "a" * 129, "abcdefgh!"])
def test_idempotency_keys_must_match_in_full(key: str) -> None:
    # `re.match` with "$" let "abcdefgh\n" through ("$" matches before a final newline).
    with pytest.raises(InvalidInput, match="Idempotency-Key"):
        idempotency.run_once("table", "scope", key, {}, lambda: {})
