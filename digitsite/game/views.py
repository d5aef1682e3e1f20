"""The game's pages: home and lobby, rooms, solo practice.

The pages only create rooms and show them; everything that happens in a room
goes over the WebSocket (docs/protocol.md) and is handled by digitsite.game.
"""

import math
import random

from django import forms
from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from digitsite.game import classroom, codes, names, protocol, rooms, rules, seats, snapshots
from digitsite.game.lobby import open_rooms
from digitsite.game.rules import NAME_MAX_LENGTH, GameError, clean_name

SESSION_NAME = "display_name"
# How often the lobby list refreshes itself, in milliseconds.
LOBBY_REFRESH_MS = 4000


def display_name(request):
    """The name this visitor plays under: the account's, else the one they picked."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.get_username()[:NAME_MAX_LENGTH]
    return request.session.get(SESSION_NAME, "")


def _clean_display_name(value):
    """A name a visitor may pick: shown correctly, and not one kept for staff
    (the room checks the rest: another player's name)."""
    try:
        name = clean_name(value)
        names.check_name_for_room(name)
        return name
    except GameError as exc:
        raise forms.ValidationError(exc.message, code=exc.code) from exc


def client_ip(request):
    """The address rooms are counted against: the connection's peer. Behind a
    proxy that is the proxy, unless the deployment rewrites REMOTE_ADDR from
    a header it trusts."""
    return request.META.get("REMOTE_ADDR") or None


def _creator(request):
    """(ip, session hash) of the visitor, for the rooms-per-client limit."""
    if request.session.session_key is None:
        request.session.save()  # a visitor without a session gets one now
    return client_ip(request), seats.hash_session(request.session.session_key)


def _too_many_rooms(request, exc, *, create_form=None, solo_error=""):
    response = _home(request, create_form=create_form, solo_error=solo_error, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


class NameForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=200, strip=True)

    def clean_name(self):
        return _clean_display_name(self.cleaned_data["name"])


class CreateRoomForm(forms.Form):
    # Only asked when the visitor has no name yet, so one click creates a room.
    name = forms.CharField(label="Your name", max_length=200, required=False, strip=True)
    rounds = forms.IntegerField(label="Rounds", min_value=rules.MIN_ROUNDS,
                                max_value=rules.MAX_ROUNDS)
    seconds = forms.IntegerField(label="Seconds per round", min_value=math.ceil(rules.MIN_SECONDS),
                                 max_value=int(rules.MAX_SECONDS))
    max_players = forms.IntegerField(label="Max players", min_value=1, max_value=rules.MAX_PLAYERS)
    private = forms.BooleanField(label="Private: not listed in the lobby", required=False)

    def __init__(self, *args, needs_name=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.needs_name = needs_name
        self.fields["name"].required = needs_name
        self.fields["rounds"].initial = settings.GAME_ROUNDS
        self.fields["seconds"].initial = int(settings.GAME_ROUND_SECONDS)
        self.fields["max_players"].initial = min(settings.GAME_MAX_PLAYERS, rules.MAX_PLAYERS)

    def clean_name(self):
        value = self.cleaned_data.get("name", "")
        if not self.needs_name:
            return ""
        return _clean_display_name(value)


class SoloForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=200, required=False, strip=True)


def _safe_next(request, fallback):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


def _room_url(code):
    return reverse("game:room", args=[code])


def _lobby_rooms():
    listed = open_rooms()
    for room in listed:
        room["url"] = _room_url(room["code"])
    return listed


def _home(request, *, name_form=None, create_form=None, join_error="", join_code="",
          solo_error="", class_form=None, status=200):
    # Imported here: class_views imports this module (its home page, for errors).
    from digitsite.game.class_views import ClassForm

    name = display_name(request)
    locked = request.user.is_authenticated
    context = {
        "name": name,
        "name_locked": locked,
        "name_form": name_form or NameForm(initial={"name": name}),
        "create_form": create_form or CreateRoomForm(needs_name=not name),
        "class_form": class_form or ClassForm(teacher=name),
        "class_max_students": settings.GAME_CLASS_MAX_STUDENTS,
        "join_error": join_error,
        "join_code": join_code,
        "solo_error": solo_error,
        "rooms": _lobby_rooms(),
        "lobby_refresh_ms": LOBBY_REFRESH_MS,
        "name_max_length": NAME_MAX_LENGTH,
    }
    return render(request, "game/home.html", context, status=status)


@never_cache
@require_GET
def home(request):
    return _home(request)


@require_POST
def set_name(request):
    """Remember the display name in the session (accounts keep their username)."""
    next_url = _safe_next(request, reverse("game:home"))
    if request.user.is_authenticated:
        return redirect(next_url)
    form = NameForm(request.POST)
    if not form.is_valid():
        if next_url != reverse("game:home"):
            room = rooms.get_room(next_url)
            if room is not None:
                return _room_page(request, room, name_form=form, status=400)
        return _home(request, name_form=form, status=400)
    request.session[SESSION_NAME] = form.cleaned_data["name"]
    return redirect(next_url)


@require_POST
def create_room(request):
    name = display_name(request)
    form = CreateRoomForm(request.POST, needs_name=not name)
    if not form.is_valid():
        return _home(request, create_form=form, status=400)
    if not name:
        name = form.cleaned_data["name"]
        request.session[SESSION_NAME] = name
    ip, session_hash = _creator(request)
    try:
        room = rooms.create_room(
            name,
            rounds=form.cleaned_data["rounds"],
            seconds=float(form.cleaned_data["seconds"]),
            max_players=form.cleaned_data["max_players"],
            private=form.cleaned_data["private"],
            creator_ip=ip, creator_session=session_hash, min_seconds=rules.MIN_SECONDS,
        )
    except GameError as exc:
        form.add_error(None, exc.message)
        if exc.code == "too_many_rooms":
            return _too_many_rooms(request, exc, create_form=form)
        return _home(request, create_form=form, status=400)
    return redirect(_room_url(room.code))


@require_POST
def create_solo(request):
    """A one-seat room: the full game (timer, points, stored drawings) alone."""
    name = display_name(request)
    if not name:
        form = SoloForm(request.POST)
        try:
            name = _clean_display_name(form.data.get("name", "")) if form.is_valid() else ""
        except forms.ValidationError:
            name = ""
        if not name:
            # A solo player needs no name others could read; one is made up.
            name = f"Player {random.randint(100, 999)}"
        request.session[SESSION_NAME] = name
    ip, session_hash = _creator(request)
    try:
        room = rooms.create_room(name, solo=True, creator_ip=ip, creator_session=session_hash)
    except GameError as exc:
        if exc.code == "too_many_rooms":
            return _too_many_rooms(request, exc, solo_error=exc.message)
        raise
    return redirect(_room_url(room.code))


@never_cache
@require_GET
def join_room(request):
    """The join-by-code form: accepts a code in any case or a pasted link."""
    text = request.GET.get("code", "").strip()
    if not text:
        return _home(request, join_error="Type the room code you were given.", status=400)
    code = codes.normalise_code(text)
    if code is None:
        return _home(request, join_code=text[:100], status=400, join_error=(
            f"'{text[:40]}' is not a room code: codes have 6 letters and digits, like K7XQ2M."))
    room = rooms.get_room(code)
    if room is None:
        return _home(request, join_code=code, status=404,
                     join_error=f"There is no room {code}. Check the code, or create a room.")
    return redirect(_room_url(room.code))


def _room_page(request, room, *, name_form=None, status=200):
    name = display_name(request)
    snapshot = snapshots.room_snapshot(room)
    seated = classroom.students([p["id"] for p in snapshot["players"] if not p["gone"]],
                                room.host_player, classroom=room.classroom)
    session_key = request.session.session_key
    if room.closed_at is not None:
        return render(request, "game/room_closed.html", {"code": room.code, "kicked": False},
                      status=410)
    if seats.is_kicked(room, session_key, request.user):
        return render(request, "game/room_closed.html", {"code": room.code, "kicked": True},
                      status=403)
    # A visitor who holds no seat is told the room is full instead of being
    # offered a join that would fail; a seated player (a reload) plays on.
    full = (len(seated) >= room.max_players
            and not seats.session_holds_seat(room, session_key, request.user))
    config = {
        "code": room.code,
        "wsPath": f"/ws/v1/rooms/{room.code}/",
        "protocol": protocol.PROTOCOL_VERSION,
        "name": name,
        "loggedIn": request.user.is_authenticated,
        "homeUrl": reverse("game:home"),
        "roomUrl": request.build_absolute_uri(_room_url(room.code)),
        "snapshot": snapshot,
    }
    context = {
        "room": room,
        "snapshot": snapshot,
        "players": snapshot["players"],
        "seats_taken": len(seated),
        "full": full,
        "name": name,
        "name_form": name_form or NameForm(initial={"name": name}),
        "needs_name": not name,
        "config": config,
        "rule": rules.SCORING_RULE,
        "accuracy_points": rules.ACCURACY_POINTS,
        "speed_points": rules.SPEED_POINTS,
        "share_url": config["roomUrl"],
        "target_percent": round(room.target_confidence * 100),
        "name_max_length": NAME_MAX_LENGTH,
        "rounds_choices": range(rules.MIN_ROUNDS, rules.MAX_ROUNDS + 1),
        "min_seconds": math.ceil(rules.MIN_SECONDS),
        "max_seconds": int(rules.MAX_SECONDS),
        "max_players": rules.MAX_PLAYERS,
    }
    return render(request, "game/room.html", context, status=status)


@never_cache
@require_GET
def room(request, code):
    found = rooms.get_room(code)
    if found is None:
        shown = code[:40]
        return render(request, "game/room_missing.html", {"code": shown}, status=404)
    if found.code != code:
        return redirect(_room_url(found.code))
    if found.classroom and classroom.is_teachers_session(
            found.creator_session, seats.hash_session(request.session.session_key)):
        # The teacher's own screen is the projector: a teacher does not draw.
        return redirect(reverse("game:projector", args=[found.code]))
    rooms.close_room_if_idle(found)
    return _room_page(request, found)


@never_cache
@require_GET
def lobby(request):
    """Open rooms as JSON, polled by the home page."""
    return JsonResponse({"rooms": _lobby_rooms()})


@require_GET
def practice(request):
    return render(request, "game/practice.html", {
        "first_target": random.randint(0, 9),
        "target_confidence": settings.GAME_TARGET_CONFIDENCE,
    })
