"""The admin for collected drawings and model versions.

Drawings are made the way the game makes them: strokes with timings, put
through the real preprocessing to the 28x28 input that is stored.
"""

import base64
import csv
import importlib
import io
import json
import re
import zipfile

import numpy as np
import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.urls import reverse
from PIL import Image

from recognizer.collection import exports, review
from recognizer.models import Drawing, DrawingLabelChange, ModelVersion
from recognizer.preprocessing import input_to_bytes, strokes_to_input
from tests.support import register_random_model

CHANGELIST = "admin:recognizer_drawing_changelist"

# Digit shapes as polylines on a 200x200 canvas.
SHAPES = {
    1: [[(100, 30), (100, 170)]],
    4: [[(130, 170), (130, 30), (50, 120), (150, 120)]],
    7: [[(50, 40), (150, 40), (80, 170)], [(70, 105), (130, 105)]],
    0: [[(100, 30), (55, 60), (50, 120), (100, 170), (150, 120), (145, 60), (100, 30)]],
}


def timed_strokes(shape, offset=0):
    """Strokes with a point every 5 px and a time in ms, like the canvas records."""
    strokes, clock = [], 0
    for line in shape:
        stroke = []
        for (x0, y0), (x1, y1) in zip(line, line[1:], strict=False):
            steps = max(int(np.hypot(x1 - x0, y1 - y0) // 5), 1)
            for i in range(steps):
                t = i / steps
                stroke.append([x0 + (x1 - x0) * t + offset, y0 + (y1 - y0) * t, clock])
                clock += 8
        stroke.append([line[-1][0] + offset, line[-1][1], clock])
        strokes.append(stroke)
        clock += 250
    return {"width": 200, "height": 200, "strokes": strokes}


def probabilities(prediction, confidence):
    rest = (1.0 - confidence) / 9
    return [confidence if d == prediction else rest for d in range(10)]


_counter = iter(range(1, 1_000_000))


def make_drawing(label=7, prediction=None, confidence=0.9, status="pending", player="alice",
                 room="ABCD", model_version=None, shape=None):
    prediction = label if prediction is None else prediction
    data = timed_strokes(SHAPES[shape if shape is not None else label if label in SHAPES else 1])
    image = strokes_to_input(data["strokes"], data["width"], data["height"])
    n = next(_counter)
    return Drawing.objects.create(
        label=label, strokes=data, input_image=input_to_bytes(image), prediction=prediction,
        probabilities=probabilities(prediction, confidence), model_version=model_version,
        player_id=f"p-{player}", player_name=player, room_code=room, game_id=f"g{n}",
        round_number=1, status=status,
    )


def ensure_groups():
    """The groups the data migration makes (a transactional test's flush removes them)."""
    migration = importlib.import_module("recognizer.migrations.0004_review_groups")
    migration.add_groups(django_apps, None)


def staff_user(django_user_model, name, *groups):
    ensure_groups()
    user = django_user_model.objects.create_user(name, password="pw-12345-long", is_staff=True)
    for group in groups:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def reviewer(db, client, django_user_model):
    client.force_login(staff_user(django_user_model, "rita", "Reviewers"))
    return client


@pytest.fixture
def manager(db, client, django_user_model):
    client.force_login(staff_user(django_user_model, "max", "Model managers"))
    return client


def changelist_ids(client, **params):
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return [d.pk for d in response.context["cl"].result_list]


def post_action(client, action, drawings, url=CHANGELIST):
    return client.post(reverse(url), {
        "action": action, "_selected_action": [d.pk for d in drawings], "index": 0,
    })


# -- the list ---------------------------------------------------------------------------


def test_changelist_shows_both_thumbnails_per_row(admin_client, active_model):
    drawings = [make_drawing(label=d, model_version=active_model) for d in (1, 4, 7, 0)]
    response = admin_client.get(reverse(CHANGELIST))
    html = response.content.decode()
    assert html.count('<svg class="drawing-thumb"') == len(drawings)
    # Each row's input thumbnail is the stored 28x28 input, pixel for pixel.
    urls = re.findall(r'class="input-thumb" src="data:image/png;base64,([^"]+)"', html)
    assert len(urls) == len(drawings)
    shown = {Image.open(io.BytesIO(base64.b64decode(u))).tobytes() for u in urls}
    assert shown == {bytes(d.input_image) for d in drawings}
    # The strokes thumbnail follows the strokes: the 1 is a single vertical path.
    one = next(d for d in drawings if d.label == 1)
    assert re.search(r'd="M100,30(L100,\d+)+"', html), "the 1's stroke is missing"
    assert one.player_name in html and active_model.version in html
    assert "Review queue (4 pending)" in html


def test_changelist_of_a_hundred_rows_is_one_response(admin_client, django_assert_max_num_queries):
    Drawing.objects.bulk_create([
        Drawing(label=d % 10, strokes=timed_strokes(SHAPES[1], offset=d % 20),
                input_image=bytes([d % 256]) * 784, prediction=d % 10,
                probabilities=probabilities(d % 10, 0.5 + d / 250), player_id=f"p{d}",
                player_name=f"player{d}", room_code="ROOM", game_id=f"g{d}")
        for d in range(100)
    ])
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse(CHANGELIST))
    assert response.content.decode().count('<svg class="drawing-thumb"') == 100
    # bulk_create skips save(); the confidence column is filled all the same.
    assert Drawing.objects.filter(confidence=0).count() == 0


def test_filters(admin_client, db):
    agree = make_drawing(label=7, prediction=7, confidence=0.995)
    differs = make_drawing(label=4, prediction=9, confidence=0.62)
    unsure = make_drawing(label=1, prediction=1, confidence=0.3, status="approved")
    rejected = make_drawing(label=0, prediction=6, confidence=0.85, status="rejected")

    assert set(changelist_ids(admin_client, differs="yes")) == {differs.pk, rejected.pk}
    assert set(changelist_ids(admin_client, differs="no")) == {agree.pk, unsure.pk}
    assert changelist_ids(admin_client, confidence="lt50") == [unsure.pk]
    assert changelist_ids(admin_client, confidence="50-80") == [differs.pk]
    assert changelist_ids(admin_client, confidence="80-95") == [rejected.pk]
    assert changelist_ids(admin_client, confidence="99+") == [agree.pk]
    assert changelist_ids(admin_client, status__exact="approved") == [unsure.pk]
    assert changelist_ids(admin_client, status__exact="rejected") == [rejected.pk]
    assert changelist_ids(admin_client, label="4") == [differs.pk]
    assert changelist_ids(admin_client, prediction="6") == [rejected.pk]
    assert changelist_ids(admin_client, label="4", differs="no") == []
    # A label that is no digit lists nothing instead of failing.
    assert changelist_ids(admin_client, label="x") == []


def test_search_and_sort_by_confidence(admin_client, db):
    low = make_drawing(confidence=0.4, player="bob", room="ZZZZ")
    high = make_drawing(confidence=0.99, player="alice", room="QQQQ")
    mid = make_drawing(confidence=0.7, player="alice", room="ZZZZ")
    assert set(changelist_ids(admin_client, q="alice")) == {high.pk, mid.pk}
    assert set(changelist_ids(admin_client, q="ZZZZ")) == {low.pk, mid.pk}
    # Column 6 of list_display is the confidence.
    assert changelist_ids(admin_client, o="6") == [low.pk, mid.pk, high.pk]
    assert changelist_ids(admin_client, o="-6") == [high.pk, mid.pk, low.pk]


def test_model_version_filter(admin_client, model_dir):
    old = register_random_model(model_dir, seed=1, activate=False)
    new = register_random_model(model_dir, seed=2, activate=True)
    a = make_drawing(model_version=old)
    b = make_drawing(model_version=new)
    assert changelist_ids(admin_client, model_version__id__exact=old.pk) == [a.pk]
    assert changelist_ids(admin_client, model_version__id__exact=new.pk) == [b.pk]


# -- bulk actions ------------------------------------------------------------------------------


def test_bulk_approve_and_reject(reviewer, db):
    first, second, third = (make_drawing() for _ in range(3))
    response = post_action(reviewer, "approve", [first, second])
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.status == "approved" and first.reviewed_by.username == "rita"
    assert first.reviewed_at is not None
    post_action(reviewer, "reject", [second, third])
    assert dict(Drawing.objects.values_list("pk", "status")) == {
        first.pk: "approved", second.pk: "rejected", third.pk: "rejected",
    }


def test_relabel_keeps_the_history(manager, db):
    drawing = make_drawing(label=1, shape=7)
    other = make_drawing(label=7)
    post_action(manager, "relabel_as_7", [drawing, other])
    post_action(manager, "relabel_as_2", [drawing])
    drawing.refresh_from_db()
    assert drawing.label == 2
    history = list(drawing.label_changes.values_list("old_label", "new_label", "user__username"))
    assert history == [(1, 7, "max"), (7, 2, "max")]
    # Already a 7: no change, no history entry.
    assert not DrawingLabelChange.objects.filter(drawing=other).exists()
    assert review.original_label(drawing) == 1

    page = manager.get(reverse("admin:recognizer_drawing_change", args=[drawing.pk]))
    html = page.content.decode()
    assert "Label history" in html
    assert re.search(r'field-old_label">\s*<p>1</p>', html)
    assert "(was 1)" in manager.get(reverse(CHANGELIST)).content.decode()


def test_relabel_refuses_a_non_digit(db):
    drawing = make_drawing(label=3, shape=1)
    for bad in (10, -1, "seven", None, True):
        with pytest.raises(review.ReviewError):
            review.relabel(Drawing.objects.filter(pk=drawing.pk), bad)
    drawing.refresh_from_db()
    assert drawing.label == 3 and not drawing.label_changes.exists()


def test_detail_page_replays_the_strokes_and_offers_decisions(reviewer, db):
    drawing = make_drawing(label=7)
    url = reverse("admin:recognizer_drawing_change", args=[drawing.pk])
    html = reviewer.get(url).content.decode()
    assert f'data-replay="strokes-{drawing.pk}"' in html
    assert "js/admin/stroke-replay.js" in html
    stored = re.search(rf'<script id="strokes-{drawing.pk}" type="application/json">(.*?)'
                       r'</script>', html, re.S).group(1)
    assert json.loads(stored) == drawing.strokes
    assert reverse("admin:recognizer_drawing_set_status", args=[drawing.pk]) in html
    # A reviewer may not relabel, so the page does not offer it.
    assert reverse("admin:recognizer_drawing_relabel", args=[drawing.pk]) not in html

    response = reviewer.post(reverse("admin:recognizer_drawing_set_status", args=[drawing.pk]),
                             {"status": "reject"})
    assert response.status_code == 302
    drawing.refresh_from_db()
    assert drawing.status == "rejected"
    response = reviewer.post(reverse("admin:recognizer_drawing_set_status", args=[drawing.pk]),
                             {"status": "delete-it"}, follow=True)
    assert "Unknown decision" in response.content.decode()
    drawing.refresh_from_db()
    assert drawing.status == "rejected"


# -- exports ------------------------------------------------------------------------------------


def exported(response):
    """An export's bytes: it is streamed, in chunks."""
    assert response.streaming
    return b"".join(response)


@pytest.fixture
def export_set(db):
    drawings = [make_drawing(label=d, confidence=0.6 + d / 100, player=f"pl{d}")
                for d in (1, 4, 7, 0)]
    review.relabel(Drawing.objects.filter(pk=drawings[0].pk), 2)
    for d in drawings:
        d.refresh_from_db()
    return drawings


def test_export_idx_pair_reads_back_as_mnist(manager, export_set, tmp_path):
    response = post_action(manager, "export_idx", export_set)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="drawings-')
    archive = zipfile.ZipFile(io.BytesIO(exported(response)))
    images_raw = archive.read(exports.IDX_IMAGES_NAME)
    labels_raw = archive.read(exports.IDX_LABELS_NAME)
    # MNIST's header: magic 0x00000803 then N, 28, 28 big-endian; labels 0x00000801 then N.
    assert images_raw[:16] == bytes.fromhex("00000803 00000004 0000001c 0000001c")
    assert labels_raw[:8] == bytes.fromhex("00000801 00000004")

    expected = sorted(export_set, key=lambda d: d.pk)
    mnist = pytest.importorskip("trainer.mnist")
    (tmp_path / "images").write_bytes(images_raw)
    (tmp_path / "labels").write_bytes(labels_raw)
    images = mnist.read_idx(tmp_path / "images", mnist.IMAGES_MAGIC)
    labels = mnist.read_idx(tmp_path / "labels", mnist.LABELS_MAGIC)
    assert images.shape == (4, 28, 28)
    assert labels.tolist() == [d.label for d in expected] == [2, 4, 7, 0]
    for image, drawing in zip(images, expected, strict=True):
        assert image.tobytes() == bytes(drawing.input_image)

    index = list(csv.DictReader(io.StringIO(archive.read(exports.INDEX_NAME).decode())))
    assert [int(r["id"]) for r in index] == [d.pk for d in expected]
    assert index[0]["original_label"] == "1" and index[0]["label"] == "2"


def test_export_csv(manager, export_set):
    response = post_action(manager, "export_csv", export_set[1:3])
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported(response).decode())))
    assert [int(r["id"]) for r in rows] == [d.pk for d in export_set[1:3]]
    for row, drawing in zip(rows, export_set[1:3], strict=True):
        pixels = bytes(int(row[f"pixel{i}"]) for i in range(784))
        assert pixels == bytes(drawing.input_image)
        assert int(row["label"]) == drawing.label
        assert row["player_name"] == drawing.player_name
        assert float(row["confidence"]) == pytest.approx(drawing.confidence)


FORMULA_NAMES = ['=HYPERLINK("//e.vil")', "+1+2", "-2+3", "@SUM(A1:A9)", "\tTab", "\rReturn"]


@pytest.mark.parametrize("action, read_rows", [
    ("export_csv", lambda content: content.decode()),
    ("export_idx", lambda content: zipfile.ZipFile(io.BytesIO(content))
     .read(exports.INDEX_NAME).decode()),
])
def test_export_neutralises_spreadsheet_formulas(manager, db, action, read_rows):
    """Player names =HYPERLINK("//e.vil"), +1+2, -2+3, @SUM(A1:A9), a leading tab and
    a leading CR reach the CSV prefixed with a quote (OWASP), so no spreadsheet runs
    them; a plain name and the numbers stay as they are."""
    drawings = [make_drawing(label=1, player=name) for name in [*FORMULA_NAMES, "alice"]]
    response = post_action(manager, action, drawings)
    rows = list(csv.DictReader(io.StringIO(read_rows(exported(response)), newline="")))
    assert [r["player_name"] for r in rows] == [f"'{n}" for n in FORMULA_NAMES] + ["alice"]
    # player_id is f"p-{name}": text that does not start with a formula character.
    assert [r["player_id"] for r in rows] == [d.player_id for d in drawings]
    assert all(float(r["confidence"]) == pytest.approx(0.9) for r in rows)


def test_export_npz(manager, export_set):
    response = post_action(manager, "export_npz", export_set)
    data = np.load(io.BytesIO(exported(response)), allow_pickle=False)
    order = np.argsort([d.pk for d in export_set])
    expected = [export_set[i] for i in order]
    assert data["ids"].tolist() == [d.pk for d in expected]
    assert data["images"].shape == (4, 28, 28) and data["images"].dtype == np.uint8
    assert data["images"][0].tobytes() == bytes(expected[0].input_image)
    assert data["labels"].tolist() == [2, 4, 7, 0]
    assert data["original_labels"].tolist() == [1, 4, 7, 0]
    assert data["player_ids"].tolist() == [d.player_id for d in expected]
    assert data["confidences"].tolist() == pytest.approx([d.confidence for d in expected])


def test_export_leaves_out_a_damaged_input(manager, export_set):
    Drawing.objects.filter(pk=export_set[1].pk).update(input_image=b"\x00" * 10)
    response = post_action(manager, "export_npz", export_set)
    data = np.load(io.BytesIO(exported(response)), allow_pickle=False)
    assert export_set[1].pk not in data["ids"].tolist() and len(data["ids"]) == 3
    follow = manager.get(reverse(CHANGELIST)).content.decode()
    assert f"ids {export_set[1].pk}" in follow


# -- the review queue ------------------------------------------------------------------------


def test_queue_page_and_batches(reviewer, db):
    done = make_drawing(status="approved")
    pending = [make_drawing(label=d % 10, shape=1) for d in range(5)]
    page = reviewer.get(reverse("admin:recognizer_drawing_review"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "js/admin/review-queue.js" in html
    assert f'data-decide-url="{reverse("admin:recognizer_drawing_review_decide")}"' in html
    assert re.search(r'data-csrf-token="[^"]{20,}"', html)

    url = reverse("admin:recognizer_drawing_review_batch")
    first = reviewer.get(url, {"limit": 3}).json()
    assert [c["id"] for c in first["drawings"]] == [d.pk for d in pending[:3]]
    assert first["remaining"] == 2 and first["pending"] == 5
    card = first["drawings"][0]
    assert card["svg"].startswith('<svg class="drawing-thumb"')
    assert card["input"].startswith("data:image/png;base64,")
    assert card["label"] == pending[0].label and card["player"] == "alice"
    second = reviewer.get(url, {"after": first["drawings"][-1]["id"], "limit": 3}).json()
    assert [c["id"] for c in second["drawings"]] == [d.pk for d in pending[3:]]
    assert second["remaining"] == 0
    assert done.pk not in [c["id"] for c in first["drawings"] + second["drawings"]]
    assert reviewer.get(url, {"limit": "many"}).status_code == 400


def test_queue_decisions(reviewer, db):
    drawing = make_drawing()
    url = reverse("admin:recognizer_drawing_review_decide")

    def decide(body):
        return reviewer.post(url, body if isinstance(body, str) else json.dumps(body),
                             content_type="application/json")

    response = decide({"id": drawing.pk, "decision": "approve"})
    assert response.status_code == 200 and response.json() == {"id": drawing.pk,
                                                                "status": "approved"}
    drawing.refresh_from_db()
    assert drawing.status == "approved" and drawing.reviewed_by.username == "rita"
    assert decide({"id": drawing.pk, "decision": "reject"}).json()["status"] == "rejected"
    # Undo puts it back in the queue and forgets who decided.
    assert decide({"id": drawing.pk, "decision": "pending"}).json()["status"] == "pending"
    drawing.refresh_from_db()
    assert drawing.reviewed_by is None and drawing.reviewed_at is None

    assert decide({"id": drawing.pk, "decision": "burn"}).status_code == 400
    assert decide({"id": "1; drop table", "decision": "approve"}).status_code == 400
    assert decide({"id": 10 ** 9, "decision": "approve"}).status_code == 404
    assert decide("{not json").status_code == 400
    assert decide("[1, 2]").status_code == 400
    assert "error" in decide({"decision": "approve"}).json()
    assert reviewer.get(url).status_code == 405
    drawing.refresh_from_db()
    assert drawing.status == "pending"


def test_queue_endpoint_needs_a_csrf_token(db, django_user_model):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user(django_user_model, "rita", "Reviewers"))
    drawing = make_drawing()
    response = client.post(reverse("admin:recognizer_drawing_review_decide"),
                           json.dumps({"id": drawing.pk, "decision": "approve"}),
                           content_type="application/json")
    assert response.status_code == 403
    drawing.refresh_from_db()
    assert drawing.status == "pending"


# -- permissions -------------------------------------------------------------------------------


def test_reviewer_may_review_but_not_relabel_export_or_activate(reviewer, model_dir):
    version = register_random_model(model_dir, seed=3, activate=False)
    drawing = make_drawing(label=1, shape=1)
    assert post_action(reviewer, "approve", [drawing]).status_code == 302
    assert post_action(reviewer, "relabel_as_3", [drawing]).status_code == 403
    assert post_action(reviewer, "export_csv", [drawing]).status_code == 403
    relabel_url = reverse("admin:recognizer_drawing_relabel", args=[drawing.pk])
    assert reviewer.post(relabel_url, {"label": 3}).status_code == 403
    activate_url = reverse("admin:recognizer_modelversion_activate", args=[version.pk])
    assert reviewer.post(activate_url).status_code == 403
    assert post_action(reviewer, "activate_selected", [version],
                       url="admin:recognizer_modelversion_changelist").status_code == 403
    drawing.refresh_from_db()
    version.refresh_from_db()
    assert (drawing.status, drawing.label, version.is_active) == ("approved", 1, False)
    # The menu offers only what the reviewer may do.
    actions = reviewer.get(reverse(CHANGELIST)).context["cl"].model_admin.get_action_choices(
        reviewer.get(reverse(CHANGELIST)).wsgi_request)
    names = {name for name, _ in actions if name}
    assert {"approve", "reject"} <= names
    assert not names & {"relabel_as_3", "export_idx", "export_csv", "export_npz"}


def test_migration_makes_the_two_groups(db):
    # A transactional test run before this one (another file, the same
    # worker) flushes what migrations wrote: re-run the migration's function,
    # which is what `migrate` runs on a fresh database.
    ensure_groups()
    reviewers = set(Group.objects.get(name="Reviewers").permissions.values_list("codename",
                                                                                flat=True))
    assert reviewers == {"view_drawing", "review_drawing", "view_modelversion"}
    managers = set(Group.objects.get(name="Model managers").permissions.values_list(
        "codename", flat=True))
    assert {"activate_modelversion", "relabel_drawing", "export_drawings"} <= managers


def test_staff_without_review_permission_is_refused(client, django_user_model, db):
    user = staff_user(django_user_model, "viewer")
    user.user_permissions.add(*Group.objects.get(name="Reviewers").permissions.exclude(
        codename="review_drawing"))
    client.force_login(user)
    drawing = make_drawing()
    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert client.get(reverse("admin:recognizer_drawing_review")).status_code == 403
    response = client.post(reverse("admin:recognizer_drawing_review_decide"),
                           json.dumps({"id": drawing.pk, "decision": "approve"}),
                           content_type="application/json")
    assert response.status_code == 403 and "error" in response.json()
    assert post_action(client, "approve", [drawing]).status_code == 403
    drawing.refresh_from_db()
    assert drawing.status == "pending"


@pytest.mark.parametrize("who", ["anonymous", "player"])
def test_anonymous_and_non_staff_are_sent_to_the_login(who, client, django_user_model, db):
    if who == "player":
        client.force_login(django_user_model.objects.create_user("pat", password="pw-12345-x"))
    drawing = make_drawing()
    for url in (reverse(CHANGELIST), reverse("admin:recognizer_drawing_review"),
                reverse("admin:recognizer_drawing_review_batch"),
                reverse("admin:recognizer_modelversion_changelist")):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = client.post(reverse("admin:recognizer_drawing_review_decide"),
                           json.dumps({"id": drawing.pk, "decision": "approve"}),
                           content_type="application/json")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    drawing.refresh_from_db()
    assert drawing.status == "pending"


# -- model versions -------------------------------------------------------------------------------


# The inference worker reads the database from its own thread, so the test's
# writes must be committed for it to see them.
@pytest.mark.django_db(transaction=True)
def test_activation_in_the_admin_switches_the_served_model(manager, active_model, model_dir,
                                                            inference_service):
    newer = register_random_model(model_dir, seed=1, activate=False)
    image = np.zeros((28, 28), dtype=np.float32)
    assert inference_service.predict(image).version == active_model.version

    url = reverse("admin:recognizer_modelversion_activate", args=[newer.pk])
    response = manager.post(url, follow=True)
    assert "Activated random-1" in response.content.decode()
    assert inference_service.predict(image).version == "random-1"

    # Roll back: the older version's page offers it, and it takes effect the same way.
    page = manager.get(reverse("admin:recognizer_modelversion_change", args=[active_model.pk]))
    assert "Roll back to this version" in page.content.decode()
    back = reverse("admin:recognizer_modelversion_activate", args=[active_model.pk])
    assert "Rolled back to random-0" in manager.post(back, follow=True).content.decode()
    assert inference_service.predict(image).version == "random-0"
    assert list(ModelVersion.objects.filter(is_active=True)) == [active_model]


def test_activate_action_needs_exactly_one(manager, active_model, model_dir):
    one = register_random_model(model_dir, seed=1, activate=False)
    two = register_random_model(model_dir, seed=2, activate=False)
    response = post_action(manager, "activate_selected", [one, two],
                           url="admin:recognizer_modelversion_changelist")
    assert response.status_code == 302
    assert ModelVersion.objects.get(is_active=True) == active_model
    post_action(manager, "activate_selected", [two], url="admin:recognizer_modelversion_changelist")
    assert ModelVersion.objects.get(is_active=True) == two


def test_a_broken_file_is_not_activated(manager, active_model, model_dir):
    broken = register_random_model(model_dir, seed=5, activate=False)
    (model_dir / "random-5.pt").write_bytes(b"not a model")
    url = reverse("admin:recognizer_modelversion_activate", args=[broken.pk])
    html = manager.post(url, follow=True).content.decode()
    assert "Not activated" in html and "checksum" in html
    assert ModelVersion.objects.get(is_active=True) == active_model


def test_active_flag_is_read_only_and_active_version_cannot_be_deleted(manager, active_model):
    url = reverse("admin:recognizer_modelversion_change", args=[active_model.pk])
    response = manager.post(url, {"is_active": "", "notes": "kept", "version": "renamed"})
    assert response.status_code == 302
    active_model.refresh_from_db()
    assert active_model.is_active and active_model.version == "random-0"
    assert active_model.notes == "kept"
    assert manager.post(reverse("admin:recognizer_modelversion_delete",
                                args=[active_model.pk])).status_code == 403


def test_model_version_page_shows_metrics_and_confusion_matrix(manager, model_dir):
    confusion = np.diag([980, 1130, 1020, 1005, 975, 885, 950, 1020, 970, 1000]).tolist()
    confusion[4][9] = 7  # a 4 taken for a 9 seven times
    confusion[4][4] -= 7
    per_class = [round(confusion[d][d] / sum(confusion[d]), 6) for d in range(10)]
    test_set = {"count": 10000, "accuracy": 0.9993, "loss": 0.021,
                "per_class_accuracy": per_class, "confusion_matrix": confusion}
    parent = register_random_model(model_dir, seed=1, activate=False)
    version = register_random_model(model_dir, seed=2, activate=True)
    ModelVersion.objects.filter(pk=version.pk).update(
        parent=parent,
        metrics={"accuracy": 0.9993, "canvas_accuracy": 0.9871, "mnist_test": test_set,
                 "canvas": {**test_set, "accuracy": 0.9871}},
        training={"command": "python manage.py finetune --epochs 3", "seed": 4, "epochs": 3,
                  "data": {"mnist_train": 60000, "collected": 240, "train_total": 60240}},
    )
    html = manager.get(reverse("admin:recognizer_modelversion_change",
                               args=[version.pk])).content.decode()
    assert "99.93%" in html and "98.71%" in html
    assert html.count('class="confusion-matrix"') == 2
    mistake = re.search(r'<td class="mistake" data-background="rgba\(235, 120, 0, '
                        r'([0-9.]+)\)" title="true 4, answered 9: 7 of 975">7</td>', html)
    assert mistake and 0.1 < float(mistake.group(1)) < 0.9
    assert re.search(r'<td class="diagonal light-text" data-background="rgba\(30, 64, 175, '
                     r'0\.900\)" title="true 1, answered 1: 1130 of 1130">1130</td>', html)
    assert "python manage.py finetune --epochs 3" in html and "60,240" in html
    assert f"Roll back to {parent.version}" in html
    listing = manager.get(reverse("admin:recognizer_modelversion_changelist")).content.decode()
    assert "60,000 MNIST + 240 drawings" in listing


# -- the model --------------------------------------------------------------------------------


def test_confidence_column_follows_the_probabilities(db):
    drawing = make_drawing(prediction=3, label=3, shape=1, confidence=0.42)
    assert drawing.confidence == pytest.approx(0.42)
    drawing.probabilities = probabilities(3, 0.77)
    drawing.save(update_fields=["probabilities"])
    assert Drawing.objects.get(pk=drawing.pk).confidence == pytest.approx(0.77)
    drawing.probabilities = "garbage"
    drawing.save()
    assert Drawing.objects.get(pk=drawing.pk).confidence == 0.0
