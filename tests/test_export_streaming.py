"""Exports are streamed, and stream exactly what the in-memory exports built.

The oracle below is the previous implementation (every row read into lists
and arrays, each file built whole in a BytesIO). The streamed exports must
hold the same bytes (CSV) or the same entries and arrays (IDX zip, NPZ),
through Django's sync handler and through ASGI, with chunks and temporary
files made tiny so that every boundary is crossed: rows split across chunks,
spooled files moved to disk. Data: 30 drawings, one relabelled, one with a
damaged input, names with commas, quotes, a CR, non-ASCII text and a formula.
"""

import csv
import io
import struct
import zipfile

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.test import AsyncClient
from django.urls import reverse

from recognizer.collection import exports, review
from recognizer.models import Drawing, DrawingLabelChange
from tests.test_admin_review import CHANGELIST, make_drawing, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

NAMES = ["Ada", "Zoë, the second", 'say "hi"', "line\rbreak", '=HYPERLINK("//e.vil")', "李"]


# -- the previous, in-memory implementation: the oracle ------------------------


def old_collect(queryset):
    first_label = Subquery(DrawingLabelChange.objects.filter(drawing=OuterRef("pk"))
                           .order_by("created", "id").values("old_label")[:1])
    values = (Drawing.objects.filter(pk__in=queryset.order_by().values("pk"))
              .annotate(original_label=Coalesce(first_label, "label")).order_by("id")
              .values("id", "label", "original_label", "prediction", "confidence", "status",
                      "player_id", "player_name", "room_code", "game_id", "round_number",
                      "model_version__version", "created", "ending", "player_label",
                      "input_image"))
    ids, images, labels, rows = [], [], [], []
    for row in values:
        data = bytes(row.pop("input_image") or b"")
        if len(data) != 784 or not 0 <= row["label"] <= 9:
            continue
        ids.append(row["id"])
        images.append(np.frombuffer(data, dtype=np.uint8))
        labels.append(row["label"])
        row["model_version"] = row.pop("model_version__version") or ""
        row["created"] = row["created"].isoformat() if row["created"] else ""
        row["confidence"] = round(float(row["confidence"]), 6)
        rows.append(row)
    image_array = (np.stack(images).reshape(len(ids), 28, 28) if ids
                   else np.zeros((0, 28, 28), dtype=np.uint8))
    return np.asarray(ids, dtype=np.int64), image_array, np.asarray(labels, np.uint8), rows


def old_csv_text(header, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([exports.spreadsheet_safe(c) for c in row] for row in rows)
    return buffer.getvalue()


def old_idx_bytes(array):
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def old_exports(queryset):
    ids, images, labels, rows = old_collect(queryset)
    columns = exports.META_COLUMNS
    csv_bytes = old_csv_text(
        columns + [f"pixel{i}" for i in range(784)],
        ([*(row[c] for c in columns), *images.reshape(len(ids), 784)[i].tolist()]
         for i, row in enumerate(rows))).encode()
    idx = {exports.IDX_IMAGES_NAME: old_idx_bytes(images),
           exports.IDX_LABELS_NAME: old_idx_bytes(labels),
           exports.INDEX_NAME: old_csv_text(["index", *columns],
                                            ([i, *(row[c] for c in columns)]
                                             for i, row in enumerate(rows))).encode()}

    def strings(column):
        return np.asarray([str(row[column]) for row in rows], dtype=str)

    npz = {"ids": ids, "images": images, "labels": labels,
           "original_labels": np.asarray([r["original_label"] for r in rows], dtype=np.uint8),
           "predictions": np.asarray([r["prediction"] for r in rows], dtype=np.uint8),
           "confidences": np.asarray([r["confidence"] for r in rows], dtype=np.float32),
           "statuses": strings("status"), "player_ids": strings("player_id"),
           "room_codes": strings("room_code"), "model_versions": strings("model_version"),
           "endings": strings("ending"),
           "player_labels": np.asarray([-1 if r["player_label"] is None else r["player_label"]
                                        for r in rows], dtype=np.int8)}
    return {"csv": csv_bytes, "idx": idx, "npz": npz}


# -- the streamed exports --------------------------------------------------------------


@pytest.fixture
def tiny_buffers(monkeypatch):
    """Chunks of 1,000 bytes, 7 rows per fetch, temporary files on disk past 4 kB."""
    monkeypatch.setattr(exports, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(exports, "ROW_BATCH", 7)
    monkeypatch.setattr(exports, "SPOOL_BYTES", 4096)


def make_drawings():
    drawings = [make_drawing(label=n % 10, confidence=0.5 + n / 100, player=NAMES[n % len(NAMES)])
                for n in range(30)]
    review.relabel(Drawing.objects.filter(pk=drawings[3].pk), 8)
    Drawing.objects.filter(pk=drawings[5].pk).update(input_image=b"\x00" * 10)
    Drawing.objects.filter(pk=drawings[7].pk).update(player_label=1)  # "it was a 1"
    return drawings


def action_data(fmt, drawings):
    return {"action": f"export_{fmt}", "_selected_action": [d.pk for d in drawings], "index": 0}


def assert_same_as_before(fmt, content, expected):
    if fmt == "csv":
        assert content == expected
    elif fmt == "idx":
        archive = zipfile.ZipFile(io.BytesIO(content))
        assert {name: archive.read(name) for name in archive.namelist()} == expected
    else:
        arrays = np.load(io.BytesIO(content), allow_pickle=False)
        assert set(arrays.files) == set(expected)
        for name, array in expected.items():
            assert arrays[name].dtype == array.dtype, name
            assert arrays[name].shape == array.shape, name
            assert np.array_equal(arrays[name], array), name


@pytest.mark.parametrize("fmt", ["csv", "idx", "npz"])
def test_a_streamed_export_holds_what_the_in_memory_one_did(client, django_user_model,
                                                            tiny_buffers, fmt):
    drawings = make_drawings()
    expected = old_exports(Drawing.objects.filter(pk__in=[d.pk for d in drawings]))[fmt]
    client.force_login(staff_user(django_user_model, "max", "Model managers"))
    response = client.post(reverse(CHANGELIST), action_data(fmt, drawings))
    assert response.status_code == 200
    assert response.streaming
    assert response["X-Export-Count"] == "29"
    chunks = list(response)
    assert len(chunks) > 1 and all(len(c) <= 1000 for c in chunks[:-1] if fmt != "csv")
    assert_same_as_before(fmt, b"".join(chunks), expected)


@pytest.mark.parametrize("fmt", ["csv", "idx", "npz"])
async def test_under_asgi_the_export_streams_asynchronously_in_chunks(django_user_model,
                                                                      tiny_buffers, fmt):
    """Django under ASGI would read a synchronous iterator whole into a list; the
    export must come as an asynchronous one, chunk by chunk."""
    drawings = await sync_to_async(make_drawings)()
    expected = (await sync_to_async(old_exports)(
        Drawing.objects.filter(pk__in=[d.pk for d in drawings])))[fmt]
    user = await sync_to_async(staff_user)(django_user_model, "max", "Model managers")
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.post(reverse(CHANGELIST), action_data(fmt, drawings))
    assert response.status_code == 200
    assert response.streaming and response.is_async
    chunks = [chunk async for chunk in response.streaming_content]
    assert len(chunks) > 1
    assert_same_as_before(fmt, b"".join(chunks), expected)


def test_csv_chunks_are_bounded_whatever_the_number_of_rows(db, tiny_buffers):
    """A chunk holds at most CHUNK_BYTES plus the one row that crossed it."""
    drawings = make_drawings()
    chunks = list(exports.csv_chunks(Drawing.objects.filter(pk__in=[d.pk for d in drawings])))
    longest_row = max(len(line) for line in b"".join(chunks).split(b"\r\n"))
    assert len(chunks) > 10
    assert all(len(chunk) <= 1000 + longest_row + 2 for chunk in chunks)


def test_the_exports_carry_what_a_player_said_their_drawing_was(client, django_user_model):
    drawings = make_drawings()
    client.force_login(staff_user(django_user_model, "max", "Model managers"))
    npz_content = b"".join(client.post(reverse(CHANGELIST), action_data("npz", drawings)))
    arrays = np.load(io.BytesIO(npz_content), allow_pickle=False)
    said = dict(zip(arrays["ids"].tolist(), arrays["player_labels"].tolist(), strict=True))
    assert said[drawings[7].pk] == 1
    assert {label for pk, label in said.items() if pk != drawings[7].pk} == {-1}
    csv_content = b"".join(client.post(reverse(CHANGELIST), action_data("csv", drawings)))
    rows = list(csv.DictReader(io.StringIO(csv_content.decode())))
    by_id = {int(row["id"]): row["player_label"] for row in rows}
    assert by_id[drawings[7].pk] == "1" and by_id[drawings[8].pk] == ""
