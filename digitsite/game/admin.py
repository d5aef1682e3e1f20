"""The game in the admin: rooms, seats and round progress, read-only, and the
page that deletes everything stored about one player.

Rows are made by the game, never typed in, so nothing here can be added or
edited; deleting needs Django's delete permissions. Deleting a player's data
needs the delete permissions of seats, round progress and drawings together,
since it removes all three.
"""

import logging

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from digitsite.game import player_data
from digitsite.game.models import Room, RoundProgress, Seat

logger = logging.getLogger(__name__)

DELETE_PLAYER_PERMISSIONS = (
    "game.delete_seat", "game.delete_roundprogress", "recognizer.delete_drawing",
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SeatInline(admin.TabularInline):
    model = Seat
    fields = ("player_id", "name", "score", "connected", "gone", "opt_out", "joined",
              "last_seen")
    readonly_fields = fields
    extra = 0
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # whole seats are deleted from their own page


@admin.register(Room)
class RoomAdmin(ReadOnlyAdmin):
    list_display = ("code", "title", "state", "solo", "classroom", "round", "game_rounds",
                    "created")
    list_filter = ("state", "solo", "classroom", "created")
    search_fields = ("code", "title")
    date_hierarchy = "created"
    list_per_page = 100
    # Hashes and addresses identify clients, not the game: they serve the
    # per-client room limit and the host's removals, and staff need neither.
    exclude = ("targets", "kicked", "creator_session", "creator_ip")
    inlines = (SeatInline,)


@admin.register(Seat)
class SeatAdmin(ReadOnlyAdmin):
    list_display = ("name", "player_id", "room", "score", "connected", "gone", "opt_out",
                    "joined", "last_seen")
    list_filter = ("connected", "gone", "opt_out", "joined")
    search_fields = ("name", "player_id", "room__code")
    list_select_related = ("room",)
    list_per_page = 100
    exclude = ("token_hash", "session_hash", "channel_name")
    readonly_fields = ("delete_data",)

    @admin.display(description="everything of this player")
    def delete_data(self, obj):
        url = reverse("admin:game_seat_delete_player")
        return format_html('<a href="{}?by=id&amp;value={}">Delete this player\'s data…</a>',
                           url, obj.player_id)

    def get_urls(self):
        return [
            path("delete-player/", self.admin_site.admin_view(self.delete_player_view),
                 name="game_seat_delete_player"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}),
                         "can_delete_players": request.user.has_perms(DELETE_PLAYER_PERMISSIONS)}
        return super().changelist_view(request, extra_context)

    def delete_player_view(self, request):
        if not request.user.has_perms(DELETE_PLAYER_PERMISSIONS):
            raise PermissionDenied("deleting a player's data needs the permissions to delete "
                                   "seats, round progress and drawings")
        source = request.POST if request.method == "POST" else request.GET
        by = source.get("by", player_data.BY_NAME)
        value = source.get("value", "")
        found = error = None
        if value:
            try:
                found = player_data.find(by, value)
            except player_data.PlayerDataError as exc:
                error = str(exc)
        if request.method == "POST" and found is not None and not found.empty:
            if source.get("confirm") != "yes":
                error = "tick the box to confirm"
            else:
                deleted = player_data.delete(by, value)
                summary = ", ".join(f"{n} {what.replace('_', ' ')}"
                                    for what, n in deleted.items())
                # The log keeps who deleted how much, not whose data it was.
                logger.info("user %s deleted a player's data (by %s): %s",
                            request.user.get_username(), by, summary)
                self.message_user(request, f"Deleted the data of the player with {by} "
                                  f"{value!r}: {summary}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:game_seat_delete_player"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Delete a player's data",
            "by": by if by in (player_data.BY_ID, player_data.BY_NAME) else player_data.BY_NAME,
            "value": value,
            "found": found,
            "error": error,
            "changelist_url": reverse("admin:game_seat_changelist"),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/game/seat/delete_player.html", context,
                                status=400 if error else 200)


@admin.register(RoundProgress)
class RoundProgressAdmin(ReadOnlyAdmin):
    list_display = ("seat", "room", "round_number", "target", "finished", "reason", "points",
                    "seconds", "drawing_deleted")
    list_filter = ("finished", "reason", "drawing_deleted")
    search_fields = ("seat__name", "seat__player_id", "room__code", "game_id")
    list_select_related = ("seat", "room")
    list_per_page = 100
    # The strokes and the input are shown where they are reviewed: the
    # collected drawings.
    exclude = ("drawing", "input_image", "probabilities")
