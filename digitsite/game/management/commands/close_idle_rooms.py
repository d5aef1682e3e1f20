"""`python manage.py close_idle_rooms`: close every room that stands empty."""

from django.conf import settings
from django.core.management.base import BaseCommand

from digitsite.game import rooms


class Command(BaseCommand):
    help = (
        "Close the game rooms nobody was in for GAME_EMPTY_ROOM_MINUTES, in short batches. "
        "The lobby does this a little at a time as it is polled; run this once after "
        "upgrading a site with many old rooms, or from cron."
    )

    def handle(self, *args, **options):
        closed = rooms.close_idle_rooms()
        self.stdout.write(f"closed {closed} room{'' if closed == 1 else 's'} empty for "
                          f"{settings.GAME_EMPTY_ROOM_MINUTES:g} minutes or more")
