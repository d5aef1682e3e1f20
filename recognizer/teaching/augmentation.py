"""How a version's training augmentation reads on the model card.

The trainer records the augmentation it used with each version
(training["augment"]: the fields of trainer.augment.AugmentConfig). The card
lists every kind of change with the recorded amounts, so it cannot fall
behind the trainer the way a sentence written by hand did ("shifted, rotated,
scaled and thickened", which left out stretching, slanting and thinning).
A record without the amounts gets the kinds alone.
"""

import math

# AugmentConfig's fields, in the card's order, each with how its amount reads.
LABELS = {
    "rotation_degrees": lambda v: f"turned by up to {v:g}° either way",
    "scale_range": lambda v: f"scaled to between {v[0]:g} and {v[1]:g} times their size",
    "aspect_jitter": lambda v: (f"made up to {v * 100:g}% wider and shorter, or narrower "
                               "and taller"),
    "shear": lambda v: f"slanted by up to {math.degrees(math.atan(v)):.0f}°",
    "translate_pixels": lambda v: f"shifted by up to {v:g} pixels in each direction",
    "thicken_fraction": lambda v: f"{v * 100:.0f}% of them made bolder",
    "thin_fraction": lambda v: f"{v * 100:.0f}% of them made thinner",
}
# The same kinds without amounts.
KINDS = ["turned", "scaled", "made wider or narrower", "slanted", "shifted",
         "some made bolder", "some made thinner"]


def _reads(label, value):
    try:
        return label(value)
    except (TypeError, ValueError, IndexError):
        return None


def describe(augment):
    """The changes a recorded augmentation made, as phrases; [] when there was none.

    `augment` is what the trainer recorded: a dict of AugmentConfig's fields,
    None (no augmentation), or anything else true (augmented, amounts not
    recorded).
    """
    if not augment:
        return []
    if not isinstance(augment, dict):
        return list(KINDS)
    phrases = []
    for name, label in LABELS.items():
        if name in augment:
            phrase = _reads(label, augment[name])
            phrases.append(phrase or f"{name.replace('_', ' ')}: {augment[name]}")
    phrases += [f"{name.replace('_', ' ')}: {value}" for name, value in augment.items()
                if name not in LABELS]
    return phrases or list(KINDS)
