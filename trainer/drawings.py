"""Collected drawings as training data: which ones, who is held out, how much they weigh.

Players' drawings are the only data that looks like what the site has to
recognise, so `finetune` both trains on them and measures on them. Three rules
make that measurement honest and the training worthwhile:

- **By player.** A player's drawings are all on one side: either they train
  the model or they test it. A player's hand is consistent, so a model that
  saw some of a player's digits would look better on that player's other
  digits than it is on strangers'.
- **Fixed.** Which side a player is on depends only on a hash of the player
  (`is_heldout`), not on how many drawings there are or in what order they
  came. New drawings of a held-out player join the held-out set, players never
  move across, and a model is never measured on drawings it was trained on by
  an earlier run. Raising the fraction only moves players from training to
  held-out (the hash is compared with the fraction), never back.
- **Weighted.** A few hundred drawings next to 60,000 MNIST digits would be
  lost; each collected drawing is drawn `weight` times as often as an MNIST
  digit (`mix`). Copies of a drawing are augmented independently, so they are
  not seen identically.

A player is the user account when the drawing has one, else the game seat's
player id: an anonymous person who plays in two rooms counts as two players.
"""

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from trainer.datasets import DigitData, concatenate

APPROVED = "approved"
PENDING = "pending"
DEFAULT_HOLDOUT_FRACTION = 0.2
# With 1,600 training drawings, weight 10 gives them a fifth of the samples
# next to MNIST's 60,000; a few hundred still make up several percent, which
# is enough to move the model without drowning MNIST (docs/training.md).
DEFAULT_WEIGHT = 10.0
# The hash's salt: changing it would reshuffle every player, so it never changes.
SPLIT_SALT = b"digitsite-heldout-v1:"


def statuses_for(include_pending=False):
    """Review statuses that count as training data; rejected drawings never do."""
    return (APPROVED, PENDING) if include_pending else (APPROVED,)


def player_key(player_id, user_id=None):
    """Who drew it, for the split: the account if there is one, else the seat."""
    if user_id is not None:
        return f"user:{user_id}"
    return f"seat:{player_id}"


def split_point(key):
    """A number in [0, 1) fixed by `key` alone (the first 8 bytes of a SHA-256)."""
    digest = hashlib.sha256(SPLIT_SALT + str(key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_heldout(key, fraction=DEFAULT_HOLDOUT_FRACTION):
    """Whether the player `key` is kept out of training, for evaluation."""
    return split_point(key) < fraction


def check_fraction(fraction):
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise ValueError("the held-out fraction must be a number")
    if not (math.isfinite(fraction) and 0 <= fraction < 1):
        raise ValueError("the held-out fraction must be at least 0 and below 1")
    return float(fraction)


def check_weight(weight):
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ValueError("the drawings' weight must be a number")
    if not (math.isfinite(weight) and 0 <= weight <= 1000):
        raise ValueError("the drawings' weight must be between 0 and 1000")
    return float(weight)


@dataclass
class CollectedDrawings:
    """The collected drawings of the chosen statuses, split by player."""

    train: DigitData
    heldout: DigitData
    train_players: list = field(default_factory=list)
    heldout_players: list = field(default_factory=list)
    statuses: tuple = (APPROVED,)
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION
    # Drawing ids on each side, in id order (for checks and reports).
    train_ids: list = field(default_factory=list)
    heldout_ids: list = field(default_factory=list)

    def summary(self):
        return {
            "statuses": list(self.statuses),
            "holdout_fraction": self.holdout_fraction,
            "drawings_train": len(self.train),
            "drawings_heldout": len(self.heldout),
            "players_train": len(self.train_players),
            "players_heldout": len(self.heldout_players),
        }


def _digit_data(images, labels):
    if not images:
        return DigitData.from_arrays(np.zeros((0, 28, 28), dtype=np.uint8), [])
    return DigitData.from_arrays(np.stack(images), labels)


def split_rows(rows, holdout_fraction=DEFAULT_HOLDOUT_FRACTION):
    """Split (id, player key, label, 784 input bytes) rows into a CollectedDrawings.

    The database-free half of `load_collected`.
    """
    fraction = check_fraction(holdout_fraction)
    sides = {True: ([], [], [], set()), False: ([], [], [], set())}
    for drawing_id, key, label, image in rows:
        images, labels, ids, players = sides[is_heldout(key, fraction)]
        data = bytes(image)
        if len(data) != 28 * 28:
            raise ValueError(f"drawing {drawing_id} has a stored input of {len(data)} bytes, "
                             "not 784")
        images.append(np.frombuffer(data, dtype=np.uint8).reshape(28, 28))
        labels.append(int(label))
        ids.append(drawing_id)
        players.add(key)
    train_images, train_labels, train_ids, train_players = sides[False]
    held_images, held_labels, held_ids, held_players = sides[True]
    return CollectedDrawings(
        train=_digit_data(train_images, train_labels),
        heldout=_digit_data(held_images, held_labels),
        train_players=sorted(train_players),
        heldout_players=sorted(held_players),
        holdout_fraction=fraction,
        train_ids=train_ids,
        heldout_ids=held_ids,
    )


def load_collected(include_pending=False, holdout_fraction=DEFAULT_HOLDOUT_FRACTION):
    """The approved (and with `include_pending`, pending) drawings, split by player."""
    from recognizer.models import Drawing

    statuses = statuses_for(include_pending)
    rows = (Drawing.objects.filter(status__in=list(statuses))
            .order_by("id").values_list("id", "player_id", "user_id", "label", "input_image"))
    collected = split_rows(
        ((pk, player_key(player_id, user_id), label, image)
         for pk, player_id, user_id, label, image in rows.iterator()),
        holdout_fraction,
    )
    collected.statuses = statuses
    return collected


def repeat_counts(count, weight, seed=0):
    """How many times each of `count` drawings goes into one epoch's data.

    Every drawing gets floor(weight) copies and, with probability equal to the
    fractional part, one more: on average exactly `weight`, the same for a
    given seed.
    """
    weight = check_weight(weight)
    whole = math.floor(weight)
    counts = torch.full((count,), whole, dtype=torch.int64)
    fraction = weight - whole
    if fraction > 0 and count:
        generator = torch.Generator().manual_seed(int(seed))
        counts += (torch.rand(count, generator=generator) < fraction).long()
    return counts


def mix(mnist, drawings, weight=DEFAULT_WEIGHT, seed=0):
    """MNIST plus the drawings repeated by `weight`; returns (data, samples from drawings)."""
    counts = repeat_counts(len(drawings), weight, seed)
    if len(drawings) and int(counts.sum()):
        index = torch.repeat_interleave(torch.arange(len(drawings)), counts)
        repeated = DigitData(drawings.images[index], drawings.labels[index])
    else:
        repeated = None
    data = concatenate(mnist, repeated)
    return data, len(data) - len(mnist)
