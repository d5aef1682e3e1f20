"""Game state that every server process shares: rooms, seats and round progress.

Nothing about a room lives only in one process's memory: several Daphne
processes may serve players of the same room, so they meet here and in the
channel layer. Changes that must happen once (ending a round, finishing a
player) are conditional UPDATEs that only one process can win.
"""

from django.conf import settings
from django.db import models


class Room(models.Model):
    class State(models.TextChoices):
        LOBBY = "lobby", "Lobby"
        PLAYING = "playing", "Playing a round"
        RESULTS = "results", "Between rounds"
        FINISHED = "finished", "Game over"

    code = models.CharField(max_length=6, unique=True)
    title = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    rounds = models.PositiveSmallIntegerField()
    round_seconds = models.FloatField()
    results_seconds = models.FloatField()
    max_players = models.PositiveSmallIntegerField()
    target_confidence = models.FloatField()
    solo = models.BooleanField(default=False)
    # The host's choice: a private room is left out of the lobby list and is
    # joined only by its code or link.
    private = models.BooleanField(default=False)
    # A class: the host's seat is the teacher's, which does not draw, and up
    # to GAME_CLASS_MAX_STUDENTS students draw (digitsite.game.classroom).
    classroom = models.BooleanField(default=False)
    # Set when the room was found empty for GAME_EMPTY_ROOM_MINUTES: it is no
    # longer listed nor joinable. Closed rooms are most rows of a long-lived
    # site, so the lobby's index leaves them out.
    closed_at = models.DateTimeField(null=True, blank=True)
    # Who created the room, to limit rooms per client: the address and a hash
    # of the session key (the key itself is a credential, never stored).
    creator_ip = models.GenericIPAddressField(null=True, blank=True)
    creator_session = models.CharField(max_length=64, blank=True)
    # Players the host removed: hashes of their seat token and session, and
    # their user id. None of them gets a seat in this room again.
    kicked = models.JSONField(default=list, blank=True)

    state = models.CharField(max_length=16, choices=State.choices, default=State.LOBBY)
    host_player = models.CharField(max_length=32, blank=True)
    game_id = models.CharField(max_length=32, blank=True)
    game_number = models.PositiveIntegerField(default=0)
    game_rounds = models.PositiveSmallIntegerField(default=0)
    round = models.PositiveSmallIntegerField(default=0)
    targets = models.JSONField(default=list, blank=True)
    target = models.PositiveSmallIntegerField(null=True, blank=True)
    round_started_at = models.DateTimeField(null=True, blank=True)
    # The deadline of the current phase: the end of the round while playing,
    # the start of the next round between rounds. Every process with players
    # in the room sets its own timer from it.
    ends_at = models.DateTimeField(null=True, blank=True)
    # Counts the room's announced snapshots (snapshots.room_message). Joins,
    # leaves and round ends from several connections and processes reach a
    # socket in any order, and an older snapshot arriving last would undo a
    # newer one (of 30 players joining at once, one went missing from every
    # screen); a connection passes on only snapshots newer than its last.
    revision = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created"]
        indexes = [
            # Open rooms by creation time: the lobby walks it newest first and
            # stops at its LIMIT, the idle-room sweep oldest first. A partial
            # index holds only open rows, so its size follows the rooms in
            # use, not every room ever made. (A narrower one that also left
            # out private and solo rooms was not chosen by SQLite's nor by
            # PostgreSQL's planner over this one, so it is not kept.)
            models.Index(fields=["created"], name="room_open_idx",
                         condition=models.Q(closed_at__isnull=True)),
            models.Index(fields=["creator_ip", "created"], name="room_creator_ip_idx"),
            models.Index(fields=["creator_session", "created"], name="room_creator_session_idx"),
            # Each server process looks for rounds left open past their deadline
            # every few seconds (digitsite.game.upkeep).
            models.Index(fields=["state", "ends_at"], name="room_state_deadline"),
        ]

    def __str__(self):
        return f"{self.code} ({self.state})"


class Seat(models.Model):
    """A player's place in a room; it survives a dropped connection."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="seats")
    player_id = models.CharField(max_length=32, unique=True)
    # Only a hash of the reconnect token is kept: the table alone does not let
    # anyone take a seat.
    token_hash = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="game_seats",
    )
    score = models.IntegerField(default=0)
    connected = models.BooleanField(default=False)
    # The channel of the connection holding the seat: a newer connection with
    # the same token replaces it, and only the holder may mark it disconnected.
    channel_name = models.CharField(max_length=200, blank=True)
    joined = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    gone = models.BooleanField(default=False)
    opt_out = models.BooleanField(default=False)
    # A hash of the Django session that took the seat (blank without one): a
    # player the host removes cannot come back from the same browser.
    session_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["joined", "id"]
        indexes = [
            models.Index(fields=["room", "gone"]),
            # "Anyone seen in this room lately?" when closing idle rooms.
            models.Index(fields=["room", "last_seen"], name="seat_room_last_seen_idx"),
        ]

    def __str__(self):
        return f"{self.name} in {self.room.code}"


class RoundProgress(models.Model):
    """One player's state in one round: the latest scored drawing and its result.

    The latest drawing is written as it is scored, so whichever process ends
    the round can store it, and nothing is lost when the player disconnects.
    """

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="progress")
    seat = models.ForeignKey(Seat, on_delete=models.CASCADE, related_name="progress")
    game_id = models.CharField(max_length=32)
    round_number = models.PositiveSmallIntegerField()
    target = models.PositiveSmallIntegerField()

    drawing = models.JSONField(null=True, blank=True)
    input_image = models.BinaryField(max_length=784, null=True, blank=True)
    prediction = models.PositiveSmallIntegerField(null=True, blank=True)
    probabilities = models.JSONField(null=True, blank=True)
    model_version = models.CharField(max_length=64, blank=True)
    target_probability = models.FloatField(default=0.0)
    best_target_probability = models.FloatField(default=0.0)
    guesses = models.PositiveIntegerField(default=0)
    reached_at = models.DateTimeField(null=True, blank=True)

    finished = models.BooleanField(default=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=16, blank=True)
    points = models.IntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)
    # The player had opted out when the round ended: the strokes, the input
    # and the probabilities were deleted then, and nothing may write them again.
    drawing_deleted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["seat", "game_id", "round_number"], name="one_progress_per_round"
            )
        ]
        indexes = [models.Index(fields=["room", "game_id", "round_number"])]

    def __str__(self):
        return f"{self.seat_id} round {self.round_number} of {self.game_id}"


class HealthProbe(models.Model):
    """The row /healthz rewrites to prove that the database takes a write.

    One row (pk 1, made by the migration) for every process: the write is a
    one-row UPDATE in its own short transaction, cheap enough for a probe
    every few seconds from each process.
    """

    checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"health probe at {self.checked_at}"
