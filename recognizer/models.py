from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    """One trained network: a weights file plus what is known about it.

    Exactly one version is active at a time; every server process serves the
    active one and notices within seconds when another is activated.
    """

    version = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # Relative to RECOGNIZER_MODEL_DIR, or "builtin:<name>" for a model shipped
    # inside the recognizer package.
    path = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveIntegerField(default=0)
    architecture = models.CharField(max_length=64, default="digitcnn-v1")
    is_active = models.BooleanField(default=False)
    # When it was last made the active version (null: never, or only before
    # this was recorded). What a process falls back to when the active file
    # does not load: a version that served before, not the newest row, which
    # is often a fine-tune the gate refused.
    last_activated = models.DateTimeField(null=True, blank=True, editable=False)
    # How it was made: command line, seed, epochs, data counts.
    training = models.JSONField(default=dict, blank=True)
    # Evaluation: accuracy, per-class accuracy, confusion matrix, curves.
    metrics = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_model_version"
            )
        ]
        permissions = [
            ("activate_modelversion", "Can activate (or roll back to) a model version"),
        ]

    def __str__(self):
        return self.version + (" (active)" if self.is_active else "")


def top_probability(probabilities, prediction):
    """The probability of the predicted digit, or 0.0 when the stored values are unusable."""
    try:
        return float(probabilities[prediction])
    except (TypeError, ValueError, IndexError, KeyError):
        return 0.0


class DrawingQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        # bulk_create skips save(); the stored confidence must still match the
        # probabilities, since the admin filters and sorts on it.
        objs = list(objs)
        for obj in objs:
            obj.confidence = top_probability(obj.probabilities, obj.prediction)
        return super().bulk_create(objs, *args, **kwargs)


class Drawing(models.Model):
    """A labelled drawing collected from a player: new training data.

    The game stores one per player per round; admins review them, and
    `finetune` trains on the approved ones.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    class Ending(models.TextChoices):
        """How the player's round ended, which says how complete the drawing
        is likely to be: a drawing that reached the target or that the
        player called done is finished; one the timer, a disconnect, leaving
        or the host cut off may be a fragment."""

        REACHED = "reached", "Reached the target, pen lifted"
        DONE = "done", "Done"
        TIME = "time", "Time ran out"
        DISCONNECTED = "disconnected", "Disconnected"
        LEFT = "left", "Left"
        KICKED = "kicked", "Removed by the host"
        UNKNOWN = "unknown", "Not recorded (an older drawing)"

    label = models.PositiveSmallIntegerField(help_text="The digit the player was asked to draw.")
    # {"width": W, "height": H, "strokes": [[[x, y, t], ...], ...]} in canvas pixels.
    strokes = models.JSONField()
    # The 28x28 network input as 784 bytes, row by row, 0 = background, 255 = ink.
    input_image = models.BinaryField(max_length=784)
    prediction = models.PositiveSmallIntegerField()
    probabilities = models.JSONField()
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="drawings"
    )
    player_id = models.CharField(max_length=64, db_index=True)
    player_name = models.CharField(max_length=64, db_index=True)
    user = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="drawings"
    )
    room_code = models.CharField(max_length=16, blank=True, db_index=True)
    game_id = models.CharField(max_length=64, blank=True)
    round_number = models.PositiveSmallIntegerField(default=0)
    source = models.CharField(max_length=16, default="game")
    ending = models.CharField(
        max_length=16, choices=Ending.choices, default=Ending.UNKNOWN, db_index=True,
        verbose_name="round ended by",
        help_text="How the player's round ended when this drawing was kept.",
    )
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    # The probability of the predicted digit, kept in its own column (filled
    # from `probabilities` on every save) so that the admin can filter and
    # sort by it.
    confidence = models.FloatField(default=0.0, db_index=True, editable=False)
    reviewed_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # The player's own word on the drawing, from the game's end-of-game
    # gallery ("this was wrong, it was a ..."): the digit they say it is.
    # Once per drawing. It changes nothing by itself: reviewers see it beside
    # the label and decide (a player who drew a 4 when asked for a 7 makes
    # the label wrong; one who says the model misread their 7 confirms it).
    player_label = models.PositiveSmallIntegerField(
        null=True, blank=True, verbose_name="player says",
        help_text="The digit the player said this drawing is, after the game.",
    )
    player_label_at = models.DateTimeField(null=True, blank=True, verbose_name="player said at")

    objects = DrawingQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            # A player's drawing for one round of one game is stored once.
            models.UniqueConstraint(
                fields=["game_id", "round_number", "player_id"], name="one_drawing_per_round"
            ),
            models.CheckConstraint(
                condition=models.Q(player_label__isnull=True) | models.Q(player_label__lte=9),
                name="player_label_is_a_digit",
            ),
        ]
        indexes = [
            # The teaching pages' cache key for the approved set (the latest
            # approval): an index lookup instead of a scan of every drawing,
            # 16 ms with 20,000 approved on SQLite.
            models.Index(fields=["status", "reviewed_at"], name="drawing_status_reviewed"),
        ]
        permissions = [
            ("review_drawing", "Can approve and reject drawings"),
            ("relabel_drawing", "Can relabel drawings"),
            ("export_drawings", "Can export drawings"),
        ]

    def __str__(self):
        return f"{self.label} by {self.player_name} ({self.status})"

    def save(self, *args, **kwargs):
        self.fill_derived_fields()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "probabilities" in update_fields:
            kwargs["update_fields"] = {*update_fields, "confidence"}
        super().save(*args, **kwargs)

    def fill_derived_fields(self):
        """Set what is derived from other fields: the confidence."""
        self.confidence = top_probability(self.probabilities, self.prediction)

    def input_array(self):
        """The stored network input as a (28, 28) float array in [0, 1]."""
        import numpy as np

        return np.frombuffer(bytes(self.input_image), dtype=np.uint8).reshape(28, 28) / 255.0


class DrawingLabelChange(models.Model):
    """One relabelling of a drawing: the history that keeps the player's original label."""

    drawing = models.ForeignKey(Drawing, on_delete=models.CASCADE, related_name="label_changes")
    old_label = models.PositiveSmallIntegerField()
    new_label = models.PositiveSmallIntegerField()
    user = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self):
        return f"{self.old_label} → {self.new_label}"


class TaughtCopy(models.Model):
    """A private copy of a model version whose head learnt one learner's or one
    class's drawings on the teach page (recognizer/taught.py).

    Only the head layers are stored, as their change from the base version
    (a few hundred kB); the convolutions are the base's. A copy belongs to
    one browser session (`owner_key`: a hash of its session key) or one class
    room (its code), is never served to anyone else, and is deleted once it
    expires.
    """

    class Owner(models.TextChoices):
        SESSION = "session", "A browser session"
        CLASS = "class", "A class room"

    owner_kind = models.CharField(max_length=8, choices=Owner.choices)
    owner_key = models.CharField(max_length=64)
    base_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="taught_copies"
    )
    head_state = models.BinaryField()
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    # What the teach step measured: examples, steps, replay, accuracies before and after.
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            # "This owner's newest copy", looked up for every prediction of
            # the teach page and every guess of a class that has one.
            models.Index(fields=["owner_kind", "owner_key", "expires_at"],
                         name="taughtcopy_owner"),
        ]

    def __str__(self):
        return f"copy of {self.base_version_id} for a {self.owner_kind}"
