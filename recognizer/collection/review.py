"""Reviewing collected drawings: decisions, relabelling, and the review queue.

The admin actions, the detail page's buttons and the queue's JSON endpoint
all go through these functions, so a decision means the same everywhere: the
status changes, and who decided and when is recorded (undoing a decision
puts the drawing back to pending and clears both).
"""

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from recognizer.collection import thumbnails
from recognizer.models import Drawing, DrawingLabelChange

Status = Drawing.Status

# What the queue's endpoint accepts, by the name its client sends.
DECISIONS = {
    "approve": Status.APPROVED,
    "approved": Status.APPROVED,
    "reject": Status.REJECTED,
    "rejected": Status.REJECTED,
    "pending": Status.PENDING,
    "undo": Status.PENDING,
}

QUEUE_BATCH_DEFAULT = 24
QUEUE_BATCH_MAX = 200
# Drawings changed per transaction by a bulk action. SQLite has one write lock
# for the whole database, and a game's drawing waits for it: "relabel all" on
# 20,000 drawings in one transaction held it for 4.4 s on a loaded 2-core
# machine (and delayed a live guess by 2.2 s elsewhere). In batches of 500 the
# same relabelling took 36 transactions of at most 147 ms (approve all: 40 of
# at most 62 ms); the lock is free between batches, so a waiting writer gets
# in after at most one. Smaller batches cost more round trips for little
# gain. 500 also keeps each IN (...) list well below SQLite's limit on query
# parameters.
BULK_BATCH = 500


class ReviewError(ValueError):
    """A decision or relabelling that cannot be carried out, with the reason."""


def parse_decision(value):
    try:
        return DECISIONS[str(value).strip().lower()]
    except KeyError:
        names = ", ".join(sorted({"approve", "reject", "pending"}))
        raise ReviewError(f"unknown decision {value!r}: use one of {names}") from None


def parse_digit(value):
    """A label 0-9 from a form or JSON value; ReviewError otherwise."""
    if isinstance(value, bool):
        raise ReviewError("a label must be a digit from 0 to 9")
    try:
        digit = int(str(value).strip())
    except (TypeError, ValueError):
        raise ReviewError(f"a label must be a digit from 0 to 9, not {value!r}") from None
    if not 0 <= digit <= 9:
        raise ReviewError(f"a label must be a digit from 0 to 9, not {digit}")
    return digit


def batches(ids, size=BULK_BATCH):
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def set_status(queryset, status, user=None):
    """Give every drawing in `queryset` the review `status`; return how many changed.

    One transaction per BULK_BATCH drawings, so a bulk decision never holds
    the write lock for long. Each batch is complete or absent: an action
    that stops half-way has decided some drawings fully and left the rest as
    they were, and running it again finishes it.
    """
    status = Status(status)
    if status == Status.PENDING:
        fields = {"reviewed_by": None, "reviewed_at": None}
    else:
        fields = {"reviewed_by": user if user and user.is_authenticated else None,
                  "reviewed_at": timezone.now()}
    # By primary key, without the admin's joins and filters, which would make
    # some databases refuse the UPDATE's subquery anyway.
    ids = list(queryset.order_by("id").exclude(status=status).values_list("id", flat=True))
    changed = 0
    for batch in batches(ids):
        with transaction.atomic():
            # Again excluding the status: a drawing decided by someone else
            # since the ids were read is not counted (nor re-stamped).
            changed += (Drawing.objects.filter(pk__in=batch).exclude(status=status)
                        .update(status=status, **fields))
    return changed


def decide(drawing_id, decision, user=None):
    """Apply one queue decision to one drawing; return the drawing as it now is.

    Raises Drawing.DoesNotExist for an unknown id and ReviewError for a bad
    decision.
    """
    status = parse_decision(decision)
    set_status(Drawing.objects.filter(pk=drawing_id), status, user)
    return Drawing.objects.only("id", "status", "reviewed_at").get(pk=drawing_id)


def relabel(queryset, digit, user=None):
    """Give every drawing in `queryset` the label `digit`, keeping the old one in its history.

    Returns how many drawings changed (those already labelled `digit` stay
    as they are and get no history entry). Committed in batches, like
    set_status: a drawing's new label and its history entry are always in the
    same transaction.
    """
    digit = parse_digit(digit)
    actor = user if user and user.is_authenticated else None
    changed = 0
    ids = list(queryset.order_by("id").exclude(label=digit).values_list("id", flat=True))
    # One transaction per BULK_BATCH drawings (see set_status).
    for batch in batches(ids):
        with transaction.atomic():
            # Locked by primary key, without the admin's joins, so that two
            # reviewers relabelling at once each record the label they replaced.
            rows = list(
                Drawing.objects.filter(pk__in=batch)
                .exclude(label=digit).select_for_update().order_by("id")
                .values_list("id", "label")
            )
            DrawingLabelChange.objects.bulk_create(
                DrawingLabelChange(drawing_id=pk, old_label=old, new_label=digit, user=actor)
                for pk, old in rows
            )
            Drawing.objects.filter(pk__in=[pk for pk, _ in rows]).update(label=digit)
            changed += len(rows)
    return changed


def original_label(drawing):
    """The label the player was given, before any relabelling."""
    first = drawing.label_changes.order_by("created", "id").first()
    return first.old_label if first else drawing.label


# -- the queue ---------------------------------------------------------------------


def pending_queryset():
    return Drawing.objects.filter(status=Status.PENDING)


def queue_batch(after_id=0, limit=QUEUE_BATCH_DEFAULT):
    """The next pending drawings after `after_id`, oldest first, as JSON-able cards.

    The queue walks forward by id, so drawings a reviewer is still looking at
    or has just decided (while the decision is on its way) never come back in
    the next batch; skipped ones come back when the queue starts over.
    """
    try:
        after_id = max(int(after_id or 0), 0)
        limit = int(limit or QUEUE_BATCH_DEFAULT)
    except (TypeError, ValueError):
        raise ReviewError("after and limit must be whole numbers") from None
    limit = min(max(limit, 1), QUEUE_BATCH_MAX)
    rows = list(
        pending_queryset()
        .filter(pk__gt=after_id)
        .select_related("model_version")
        .order_by("id")[:limit]
    )
    remaining = pending_queryset().filter(pk__gt=rows[-1].pk).count() if rows else 0
    return {
        "drawings": [card(row) for row in rows],
        "remaining": remaining,
        "pending": pending_queryset().count(),
    }


def card(drawing):
    """What the queue shows of one drawing."""
    name = f"Drawing {drawing.pk}: {drawing.label} by {drawing.player_name}"
    svg = thumbnails.strokes_svg(drawing.strokes, size=150, label=name)
    return {
        "id": drawing.pk,
        "label": drawing.label,
        "prediction": drawing.prediction,
        "confidence": round(drawing.confidence, 4),
        "player_label": drawing.player_label,
        "status": drawing.status,
        "player": drawing.player_name,
        "room": drawing.room_code,
        "created": drawing.created.isoformat() if drawing.created else None,
        "model": drawing.model_version.version if drawing.model_version else None,
        "svg": str(svg) if svg is not None else None,
        "input": thumbnails.input_data_url(drawing.input_image),
        "url": reverse("admin:recognizer_drawing_change", args=[drawing.pk]),
    }
