"""`python manage.py purge_old_data`: delete what the retention period allows
(see digitsite/game/retention.py). Run it daily, e.g. from cron or a systemd timer
(docs/deployment.md)."""

import math

from django.core.management.base import BaseCommand, CommandError

from digitsite.game import retention


def _days(value):
    try:
        days = float(value)
    except ValueError:
        raise CommandError(f"--days must be a number, not {value!r}") from None
    if not (math.isfinite(days) and 0 < days <= 36500):
        raise CommandError("--days must be above 0 and at most 36500")
    return days


class Command(BaseCommand):
    help = (
        "Delete rooms nobody has used for DATA_RETENTION_DAYS (default 30), with their seats "
        "and round progress, expired sessions and expired taught copies. Collected drawings "
        "are kept. Prints what it deleted (or, with --dry-run, what it would delete)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true",
                            help="count what would be deleted and delete nothing")
        parser.add_argument("--days", type=str, default=None,
                            help="retention in days for this run (default DATA_RETENTION_DAYS)")

    def handle(self, *args, **options):
        days = None if options["days"] is None else _days(options["days"])
        dry_run = options["dry_run"]
        before = retention.cutoff(days=days)
        counts = retention.purge(days=days, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"Rooms unused since {before:%Y-%m-%d %H:%M} UTC: {verb} "
                          f"{counts.rooms} rooms, {counts.seats} seats, "
                          f"{counts.round_progress} round progress rows.")
        if counts.rounds_closed:
            self.stdout.write(f"Closed {counts.rounds_closed} rounds left open first "
                              f"(their drawings are stored).")
        if counts.sessions is None:
            self.stdout.write("Sessions: the session engine expires them itself.")
        else:
            self.stdout.write(f"Expired sessions: {verb} {counts.sessions}.")
        self.stdout.write(f"Expired taught copies (the teach page): {verb} "
                          f"{counts.taught_copies}.")
        self.stdout.write("Collected drawings are kept (delete a player's data in the admin).")
