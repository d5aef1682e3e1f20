"""Display names: what a player may be called, and when two names are "the same".

Plain functions, no database. A name is shown to the other players of a room,
on the leaderboard and in the admin, so it must be visible, must not reorder
the text around it, must not pass for another player in the same room, and
must not pass for the site's own staff.
"""

import unicodedata

from digitsite.game.rules import GameError

NAME_MAX_LENGTH = 24

# Bidirectional embeddings, overrides and isolates (LRE, RLE, PDF, LRO, RLO;
# LRI, RLI, FSI, PDI): "Ada\u202eevil" shows reversed text, and an unclosed
# one reorders whatever the page shows after the name.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# Letters that render as nothing though Unicode calls them letters (Lo), the
# classic way round a "must not be blank" check, plus the braille blank.
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")

# Names only staff accounts may use (compared after folding, letters and
# digits only, so "ADMIN", "Ａｄｍｉｎ", "ad\u200bmin" and "a.d.m.i.n" all count).
RESERVED_NAMES = frozenset({
    "admin", "administrator", "staff", "moderator", "mod", "host", "system", "server",
    "root", "owner", "support", "official",
})


# Cyrillic and Greek letters drawn like Latin ones in common fonts (after
# case folding), from Unicode's confusables list: NFKC leaves them alone, so
# "Аdmin" with a Cyrillic А would pass for "Admin". Only whole names are
# compared, so a name written in Cyrillic ("Ада") stays distinct from a
# Latin one ("Ada") as long as one letter differs in shape.
LOOKALIKES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k", "м": "m",
    "н": "h", "о": "o", "р": "p", "с": "c", "ѕ": "s", "т": "t", "у": "y", "х": "x",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "ё": "e", "ї": "i",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ζ": "z",
})


def _invisible(ch):
    """Draws nothing on its own: format characters (zero-width space, joiners,
    soft hyphen, word joiner, direction marks), combining marks, spaces and
    the blank letters above."""
    category = unicodedata.category(ch)
    return (category in ("Cf", "Mn", "Me", "Zs", "Zl", "Zp")
            or ch in INVISIBLE_LETTERS or ch.isspace())


def clean_name(name):
    """A display name fit to show to others, or GameError('bad_name').

    Whitespace runs become one space; the name is kept as typed otherwise
    (NFC only), so accents and emoji sequences with joiners survive.
    """
    if not isinstance(name, str):
        raise GameError("bad_name", "name must be a string")
    name = unicodedata.normalize("NFC", " ".join(name.split()))
    if not name:
        raise GameError("bad_name", "pick a name first")
    if len(name) > NAME_MAX_LENGTH:
        raise GameError("bad_name", f"names are at most {NAME_MAX_LENGTH} characters")
    if any(ch in BIDI_CONTROLS for ch in name):
        raise GameError("bad_name", "the name contains text-direction controls; "
                                    "type it without them")
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") for ch in name):
        raise GameError("bad_name", "the name contains characters that cannot be shown")
    if all(_invisible(ch) for ch in name):
        raise GameError("bad_name", "the name has no visible characters")
    return name


def name_key(name):
    """What two names are compared by: invisible characters dropped, NFKC,
    case folded, Cyrillic and Greek look-alikes read as Latin, spaces
    collapsed. "Ada", "ADA", "Ａｄａ", "A\u200bda" and "Аda" (Cyrillic А) share a key."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch if not _invisible(ch) or ch.isspace() else "" for ch in text)
    # Folding can leave text that NFKC changes again (e.g. "ß" -> "ss" is fine,
    # but some folded characters decompose): normalise once more.
    text = unicodedata.normalize("NFKC", text.casefold()).translate(LOOKALIKES)
    return " ".join(text.split())


def is_reserved(name):
    """The name reads as one of the staff names, ignoring case, width,
    invisible characters, spaces and punctuation."""
    return "".join(ch for ch in name_key(name) if ch.isalnum()) in RESERVED_NAMES


def check_name_for_room(name, *, taken=(), staff=False):
    """Refuse a name that is reserved (unless `staff`) or imitates one in `taken`.

    `taken` are the display names of the players already seated in the room.
    Raises GameError('name_reserved') or GameError('name_taken').
    """
    if not staff and is_reserved(name):
        raise GameError("name_reserved", f"'{name}' is kept for the site's staff; "
                                         "pick another name")
    key = name_key(name)
    for other in taken:
        if name_key(other) == key:
            raise GameError("name_taken", f"someone in this room is already called "
                                          f"'{other}'; pick another name")
