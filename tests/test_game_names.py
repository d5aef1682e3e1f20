"""Display names as plain rules, without a database: what may be shown, and
when two names are the same person to the other players."""

import pytest

from digitsite.game import names
from digitsite.game.rules import GameError


def refused(name, taken=()):
    """The GameError for `name` typed by a visitor, in a room where `taken` sit."""
    with pytest.raises(GameError) as caught:
        names.check_name_for_room(names.clean_name(name), taken=taken)
    return caught.value


@pytest.mark.parametrize("hostile", [
    "\u200b",                  # zero-width space only
    "\u200b\u200c\u200d\u2060",  # zero-width space, non-joiner, joiner, word joiner
    "\u00ad\u00ad",            # soft hyphens only
    "\u0301\u0308",            # combining marks only
    "\u20dd",                  # an enclosing mark alone
    "\u3164",                  # Hangul filler: a "letter" that draws nothing
    "\u2800\u2800",            # braille blanks
    "\u200e\u200f",            # direction marks only
    " \u3000 \u200b ",         # ideographic space and a zero-width space
])
def test_invisible_only_names_are_refused(hostile):
    error = refused(hostile)
    assert error.code == "bad_name"
    assert "visible" in error.message or "pick a name" in error.message


@pytest.mark.parametrize("hostile", [
    "Ada\u202eolleh",  # right-to-left override
    "\u202aAda",       # left-to-right embedding
    "Ada\u202c",       # pop directional formatting
    "\u2066Ada\u2069",  # left-to-right isolate ... pop isolate
    "Ada\u2067",       # right-to-left isolate, never closed
    "\u2068Ada",       # first strong isolate
])
def test_bidirectional_overrides_and_isolates_are_refused(hostile):
    error = refused(hostile)
    assert error.code == "bad_name" and "direction" in error.message


@pytest.mark.parametrize("hostile", ["a\x00b", "Ada\x1b[31m", "Ada\x7f", "Ada\x9b",
                                     "Ada\ud800", "Ada\ue000"])
def test_control_surrogate_and_private_use_characters_are_refused(hostile):
    error = refused(hostile)
    assert error.code == "bad_name" and "cannot be shown" in error.message


@pytest.mark.parametrize("fine", ["Ada", "Zoë", "José", "e\u0301mile", "李雷", "Ада",
                                  "👩\u200d💻 Ada", "O'Brien-Smith", "ﾊﾝｽ"])
def test_ordinary_names_in_any_script_are_kept(fine):
    assert names.clean_name(fine) == names.clean_name(fine).strip()
    names.check_name_for_room(names.clean_name(fine), taken=["Bob"])


def test_names_are_trimmed_and_whitespace_collapsed():
    assert names.clean_name("  Ada \t  Lovelace ") == "Ada Lovelace"
    assert names.clean_name("Zoe\u0308") == "Zoë"  # NFC: one character, as typed


@pytest.mark.parametrize("imitation", [
    "ada", "ADA", "Ａｄａ",         # case and full width (NFKC)
    "A\u200bda", "Ad\u00ada",     # a zero-width space, a soft hyphen inside
    " Ada ", "Ada\u2060",          # spaces around, a word joiner after
    "ＡＤＡ",
    "\u0410da", "Ad\u0430",       # a Cyrillic А / а in place of the Latin one
    "\u0391DA",                    # a Greek capital alpha
])
def test_a_name_that_imitates_a_seated_player_is_refused(imitation):
    error = refused(imitation, taken=["Bob", "Ada"])
    assert error.code == "name_taken" and "'Ada'" in error.message


def test_different_names_are_not_imitations():
    names.check_name_for_room("Ada L", taken=["Ada"])
    names.check_name_for_room("Adam", taken=["Ada"])
    names.check_name_for_room("Ада", taken=["Ada"])  # Cyrillic д looks nothing like d
    assert names.name_key("Straße") == names.name_key("STRASSE")  # case folding


@pytest.mark.parametrize("reserved", [
    "admin", "Admin", "ADMIN", "Ａｄｍｉｎ", "ad\u200bmin", "a.d.m.i.n", "Staff",
    "moderator", "Host", "SYSTEM", "a d m i n",
    "\u0410dmin",                  # Cyrillic А
    "\u041d\u041e\u0405\u0422",     # HOST, all four letters Cyrillic
])
def test_staff_names_are_reserved_for_staff(reserved):
    error = refused(reserved)
    assert error.code == "name_reserved" and "staff" in error.message
    names.check_name_for_room(names.clean_name(reserved), staff=True)


def test_names_that_only_contain_a_staff_word_are_allowed():
    for fine in ("Admiral", "Hostess", "Ada the admin fan", "System32"):
        names.check_name_for_room(fine)
