"""Room codes: short, easy to read aloud and to type on a phone."""

import re
import secrets

# No I, O, 0 or 1: they are read as each other.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
LENGTH = 6
_CODE_RE = re.compile(f"^[{ALPHABET}]{{{LENGTH}}}$")


def generate_code():
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise_code(text):
    """The room code in `text` (a code in any case, or a pasted link); None if none.

    Spaces and dashes inside a code are ignored, so "k7x-q2m" works.
    """
    if not isinstance(text, str):
        return None
    text = text.strip()
    if "/" in text:
        # A link such as https://host/rooms/K7XQ2M/ : the code is its last part.
        text = text.split("?", 1)[0].split("#", 1)[0]
        parts = [part for part in text.split("/") if part]
        text = parts[-1] if parts else ""
    code = re.sub(r"[\s-]", "", text).upper()
    return code if _CODE_RE.match(code) else None
