"""Taught copies (recognizer/taught.py): stored heads, who sees a copy, expiry, and a
class's game read by its own copy (digitsite/game/scoring.py).

A copy here is made by hand so its answers are unmistakable: its head is the
base's with the output bias of one digit raised by 100, so it reads every
drawing as that digit, while the base does not.
"""

import copy as copying
from datetime import timedelta

import numpy as np
import pytest
import torch
from asgiref.sync import sync_to_async
from django.utils import timezone

from digitsite.game.rooms import create_room
from recognizer import taught, versions
from recognizer.models import TaughtCopy
from tests.support import SEVEN
from tests.test_game_consumers import join


def biased_head(base, digit):
    model = copying.deepcopy(base)
    with torch.no_grad():
        model.classifier.bias[digit] += 100.0
        model.dense.weight.mul_(1.01)  # a change the int8 delta must carry
    return taught.pack_head(base, model), model


def save(owner_kind, owner_key, version, digit, **kwargs):
    base, _ = versions.load_version(version)
    head, _ = biased_head(base, digit)
    return taught.save_copy(owner_kind, owner_key, version, head, {"digit": digit}, **kwargs)


@pytest.fixture(autouse=True)
def fresh_lookups():
    taught._class_lookups.clear()
    yield
    taught._class_lookups.clear()


@pytest.mark.django_db
def test_a_head_round_trips_in_a_few_hundred_kilobytes(active_model):
    base, _ = versions.load_version(active_model)
    torch.manual_seed(1)
    trained = copying.deepcopy(base)
    with torch.no_grad():
        trained.dense.weight.add_(torch.randn_like(trained.dense.weight) * 0.01)
        trained.classifier.weight.add_(torch.randn_like(trained.classifier.weight) * 0.05)
    data = taught.pack_head(base, trained)
    assert 400_000 < len(data) < 420_000  # the float32 head would take 1.6 MB
    restored = taught.unpack_head(base, data)
    inputs = torch.rand(64, 1, 28, 28)
    with torch.inference_mode():
        exact = torch.softmax(trained(inputs), 1)
        served = torch.softmax(restored(inputs), 1)
    assert torch.equal(exact.argmax(1), served.argmax(1))
    assert float((exact - served).abs().max()) < 2e-3
    for name, value in restored.state_dict().items():
        if name.split(".")[0] not in ("dense", "classifier"):
            assert torch.equal(value, base.state_dict()[name]), name
    with pytest.raises(taught.CopyError, match="cannot be read"):
        taught.unpack_head(base, b"not a head")


# The copies' own thread reads the head: it needs its own connection to see the rows.
@pytest.mark.django_db(transaction=True)
def test_a_copy_is_its_owners_alone_and_expires(active_model):
    mine = taught.session_owner("session-one")
    theirs = taught.session_owner("session-two")
    assert mine != theirs and "session-one" not in mine
    first = save(taught.SESSION, mine, active_model, 3)
    assert taught.latest_copy(taught.SESSION, mine).pk == first.pk
    assert taught.latest_copy(taught.SESSION, theirs) is None
    # A session's copy is no class's, even under the same key.
    assert taught.latest_copy(taught.CLASS, mine) is None

    # A new copy replaces the owner's older one.
    second = save(taught.SESSION, mine, active_model, 5)
    assert list(TaughtCopy.objects.values_list("pk", flat=True)) == [second.pk]
    image = np.zeros((28, 28), np.float32)
    image[5:23, 13:15] = 1.0
    assert taught.predict(taught.latest_copy(taught.SESSION, mine), image).digit == 5

    # Past its hours it is never served, and the purge deletes it.
    later = timezone.now() + timedelta(hours=2, seconds=1)
    assert taught.latest_copy(taught.SESSION, mine, now=later) is None
    assert taught.purge_expired(now=later) == 1
    assert not TaughtCopy.objects.exists()
    # Saving a copy purges the expired ones of everybody.
    save(taught.SESSION, theirs, active_model, 1, hours=0.5)
    save(taught.SESSION, mine, active_model, 2, now=timezone.now() + timedelta(hours=1))
    assert list(TaughtCopy.objects.values_list("owner_key", flat=True)) == [mine]


@pytest.mark.django_db(transaction=True)
async def test_a_class_game_is_read_by_its_copy_and_no_other_room_is(active_model, manual_clock):
    from recognizer.inference import get_service

    # The process's inference service looks for a newly active version every
    # 2 s; an earlier test may have activated another one just now.
    await sync_to_async(get_service().refresh)(force=True)
    taught_class = await sync_to_async(create_room)("Ms Hopper", classroom=True, rounds=1,
                                                     seconds=20, target_confidence=1.0)
    other_class = await sync_to_async(create_room)("Mr Babbage", classroom=True, rounds=1,
                                                    seconds=20, target_confidence=1.0)
    plain_room = await sync_to_async(create_room)("Grace", rounds=1, seconds=20,
                                                  target_confidence=1.0)
    await sync_to_async(save)(taught.CLASS, taught.class_owner(taught_class.code),
                              active_model, 3)
    # A copy filed under a plain room's code is never used: only classes read copies.
    await sync_to_async(save)(taught.CLASS, taught.class_owner(plain_room.code),
                              active_model, 3)
    # Nor is a session's copy ever used by the game.
    await sync_to_async(save)(taught.SESSION, taught.session_owner("a-browser"),
                              active_model, 3)

    guesses = {}
    for room, host in ((taught_class, "Ms Hopper"), (other_class, "Mr Babbage"),
                       (plain_room, None)):
        teacher = await join(room.code, host) if host else None
        student = await join(room.code, "Ada")
        starter = teacher or student
        await starter.send("start")
        await student.expect("round_start", round=1)
        await student.send("draw", round=1, seq=1, drawing=SEVEN)
        guesses[room.code] = await student.expect("guess", seq=1)
        for client in filter(None, (teacher, student)):
            await client.close()

    copied = guesses[taught_class.code]
    assert copied["digit"] == 3 and copied["probabilities"][3] > 0.999
    assert copied["model"] == f"{active_model.version}+taught"
    for code in (other_class.code, plain_room.code):
        assert guesses[code]["model"] == active_model.version
        assert guesses[code]["probabilities"] != copied["probabilities"]


# The copies' own thread reads the head: it needs its own connection to see the rows.
@pytest.mark.django_db(transaction=True)
def test_a_drawing_a_copy_read_is_stored_under_the_copys_base_version(active_model):
    from recognizer.collection import store_drawing
    from recognizer.preprocessing import input_to_bytes

    copy = save(taught.CLASS, taught.class_owner("ABCD"), active_model, 3)
    image = np.zeros((28, 28), np.float32)
    image[5:23, 13:15] = 1.0
    prediction = taught.predict(copy, image)
    assert prediction.version == f"{active_model.version}+taught"
    drawing, created = store_drawing(
        game_id="game-one", round_number=1, player_id="student-0", player_name="Ada",
        user_id=None, room_code="ABCD", label=1, strokes=SEVEN,
        input_image=input_to_bytes(image), prediction=prediction.digit,
        probabilities=prediction.probabilities, model_version=prediction.version)
    drawing.refresh_from_db()
    # The base version (a copy has no row of its own), with the copy's reading.
    assert created and drawing.model_version_id == active_model.pk
    assert drawing.prediction == 3 and drawing.probabilities == prediction.probabilities
    # A name no version has is still stored as no version.
    unknown, _ = store_drawing(
        game_id="game-one", round_number=2, player_id="student-0", player_name="Ada",
        user_id=None, room_code="ABCD", label=1, strokes=SEVEN,
        input_image=input_to_bytes(image), prediction=3, probabilities=[0.1] * 10,
        model_version="no-such-version+taught")
    assert unknown.model_version is None


@pytest.mark.django_db
def test_purge_old_data_deletes_expired_copies(active_model):
    import io

    from django.core.management import call_command

    live = save(taught.SESSION, taught.session_owner("live"), active_model, 1)
    old = save(taught.CLASS, taught.class_owner("abcdef"), active_model, 2)
    TaughtCopy.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    out = io.StringIO()
    call_command("purge_old_data", "--dry-run", stdout=out)
    assert "Expired taught copies (the teach page): would delete 1." in out.getvalue()
    assert TaughtCopy.objects.count() == 2
    call_command("purge_old_data", stdout=out)
    assert "Expired taught copies (the teach page): deleted 1." in out.getvalue()
    assert list(TaughtCopy.objects.values_list("pk", flat=True)) == [live.pk]
    assert taught.class_copy("ABCDEF") is None


@pytest.mark.django_db
def test_a_class_copy_is_read_once_until_a_copy_is_saved_or_deleted(
        active_model, django_capture_on_commit_callbacks):
    # Every guess of a class room asks for its copy: one query the first
    # time, none for the guesses after, a new one after each change.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from recognizer import class_copies

    def committed(change, *args):
        # The token changes once the transaction commits (class_copies.py).
        with django_capture_on_commit_callbacks(execute=True):
            return change(*args)

    first = committed(save, taught.CLASS, taught.class_owner("abcdef"), active_model, 2)
    with CaptureQueriesContext(connection) as queries:
        assert taught.class_copy("ABCDEF").pk == first.pk
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        for _ in range(40):
            assert taught.class_copy("ABCDEF").pk == first.pk
    assert len(queries) == 0
    # A room without a copy is remembered as such too.
    taught.class_copy("GHIJKL")
    with CaptureQueriesContext(connection) as queries:
        assert taught.class_copy("GHIJKL") is None
    assert len(queries) == 0

    # The teacher teaches again: the next guess reads the new copy.
    token_before = class_copies.token(taught.class_owner("abcdef"))
    # Not before the commit: another process would read the old row under
    # the new token and keep it.
    with django_capture_on_commit_callbacks(execute=False) as pending:
        second = save(taught.CLASS, taught.class_owner("abcdef"), active_model, 3)
    assert class_copies.token(taught.class_owner("abcdef")) == token_before
    for callback in pending:
        callback()
    with CaptureQueriesContext(connection) as queries:
        assert taught.class_copy("ABCDEF").pk == second.pk
        assert taught.class_copy("ABCDEF").pk == second.pk
    assert len(queries) == 1
    # Another class's copy changes nothing here.
    committed(save, taught.CLASS, taught.class_owner("ghijkl"), active_model, 4)
    with CaptureQueriesContext(connection) as queries:
        assert taught.class_copy("ABCDEF").pk == second.pk
    assert len(queries) == 0

    # Another process saved one (its signal changed the shared token only).
    TaughtCopy.objects.filter(pk=second.pk).update(summary={"digit": 5})
    class_copies.changed(taught.class_owner("abcdef"))
    assert taught.class_copy("ABCDEF").summary == {"digit": 5}

    # Deleted (purged, or deleted in the admin): the next guess has none.
    committed(TaughtCopy.objects.get(pk=second.pk).delete)
    assert taught.class_copy("ABCDEF") is None


@pytest.mark.django_db
def test_an_expired_class_copy_is_not_used_however_it_was_cached(active_model):
    copy = save(taught.CLASS, taught.class_owner("abcdef"), active_model, 2)
    assert taught.class_copy("ABCDEF").pk == copy.pk
    # Expiry is a time, not a change: no signal, still noticed (the copy
    # in hand is as the database now says, a second past its expiry).
    past = timezone.now() - timedelta(seconds=1)
    TaughtCopy.objects.filter(pk=copy.pk).update(expires_at=past)
    taught._class_lookups[taught.class_owner("abcdef")][1].expires_at = past
    assert taught.class_copy("ABCDEF") is None
