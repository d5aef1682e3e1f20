"""How pages name a digit in a sentence: "a 7" but "an 8".

`{% load digits %}` then `{{ digit|with_article }}`. The pages' scripts use
the same rule (static/js/article.js).
"""

from django import template

register = template.Library()


def article(number):
    """"a" or "an" for `number` as it is read out in English.

    A number takes "an" when its spoken form starts with a vowel sound: eight,
    eleven, eighteen, and the numbers read starting with them (80-89, 800-899,
    8,000, 11,000, 18,000...).
    """
    try:
        value = int(number)
    except (TypeError, ValueError):
        return "a"
    if value < 0:
        return "a"
    digits = str(value)
    # The group read first: "18" of 18,000, "1" of 1,800.
    lead = digits[: len(digits) % 3 or 3]
    return "an" if digits.startswith("8") or lead in {"11", "18"} else "a"


@register.filter
def with_article(number):
    """The number with its article: "a 7", "an 8"."""
    return f"{article(number)} {number}"
