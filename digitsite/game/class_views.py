"""The pages of a class: opening one from the home page, and the teacher's
projector view.

A class is a room (digitsite.game.classroom) that the teacher runs from the
projector page: it shows the code and a QR code of the join link, and over
the room's WebSocket the students' drawings live and the class's results.
Students join on the ordinary room page from their phones.
"""

import math

from django import forms
from django.conf import settings
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from digitsite.game import classroom, names, protocol, rooms, rules, seats, snapshots
from digitsite.game.join_qr import join_qr_svg
from digitsite.game.rules import NAME_MAX_LENGTH, GameError


class ClassForm(forms.Form):
    teacher = forms.CharField(label="Your name (shown to the students)", max_length=200,
                              strip=True)
    rounds = forms.IntegerField(label="Rounds", min_value=rules.MIN_ROUNDS,
                                max_value=rules.MAX_ROUNDS)
    seconds = forms.IntegerField(label="Seconds per round",
                                 min_value=math.ceil(rules.MIN_SECONDS),
                                 max_value=int(rules.MAX_SECONDS))

    def __init__(self, *args, teacher="", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["teacher"].initial = teacher
        self.fields["rounds"].initial = settings.GAME_ROUNDS
        self.fields["seconds"].initial = int(settings.GAME_ROUND_SECONDS)

    def clean_teacher(self):
        try:
            name = rules.clean_name(self.cleaned_data["teacher"])
            names.check_name_for_room(name)
        except GameError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc
        return name


def projector_url(code):
    return reverse("game:projector", args=[code])


def is_teachers_browser(request, room):
    """This visitor opened the class (its browser session), or nobody did
    from a browser (a class made by a script: whoever opens the projector
    first is its teacher, as the first to join is)."""
    if not room.creator_session:
        return True
    return classroom.is_teachers_session(
        room.creator_session, seats.hash_session(request.session.session_key))


@require_POST
def create_class(request):
    """The home page's "Open a class" form: a class room, then its projector."""
    from digitsite.game import views  # the home page, which shows this form

    form = ClassForm(request.POST)
    if not form.is_valid():
        return views._home(request, class_form=form, status=400)
    ip, session_hash = views._creator(request)
    try:
        room = rooms.create_room(
            form.cleaned_data["teacher"], classroom=True,
            rounds=form.cleaned_data["rounds"], seconds=float(form.cleaned_data["seconds"]),
            creator_ip=ip, creator_session=session_hash, min_seconds=rules.MIN_SECONDS,
        )
    except GameError as exc:
        form.add_error(None, exc.message)
        response = views._home(request, class_form=form,
                                   status=429 if exc.code == "too_many_rooms" else 400)
        if exc.code == "too_many_rooms":
            response["Retry-After"] = str(exc.retry_after)
        return response
    return redirect(projector_url(room.code))


@never_cache
@require_GET
def projector(request, code):
    """The teacher's screen: join code and QR code, the live grid, the results."""
    room = rooms.get_room(code)
    if room is None or not room.classroom:
        return render(request, "game/room_missing.html", {"code": code[:40]}, status=404)
    if room.code != code:
        return redirect(projector_url(room.code))
    join_url = request.build_absolute_uri(reverse("game:room", args=[room.code]))
    if not is_teachers_browser(request, room):
        return render(request, "game/class_not_teacher.html",
                      {"code": room.code, "join_url": join_url}, status=403)
    if rooms.close_room_if_idle(room):
        return render(request, "game/room_closed.html", {"code": room.code, "kicked": False},
                      status=410)
    snapshot = snapshots.room_snapshot(room)
    config = {
        "code": room.code,
        "wsPath": f"/ws/v1/rooms/{room.code}/",
        "protocol": protocol.PROTOCOL_VERSION,
        "name": room.title[:NAME_MAX_LENGTH] or "Teacher",
        "joinUrl": join_url,
        "homeUrl": reverse("game:home"),
        "snapshot": snapshot,
        "liveUpdatesPerSecond": classroom.LIVE_UPDATES_PER_SECOND,
    }
    return render(request, "game/class_projector.html", {
        "room": room,
        "snapshot": snapshot,
        "config": config,
        "join_url": join_url,
        # segno's SVG: path data and attributes of its own making, no text of ours
        # but the title, which it escapes.
        "qr_svg": mark_safe(join_qr_svg(join_url, title=f"Scan to join class {room.code}")),
        "max_students": room.max_players,
        "rounds_choices": range(rules.MIN_ROUNDS, rules.MAX_ROUNDS + 1),
        "digits": range(10),
    })
