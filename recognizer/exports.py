"""Exporting collected drawings as training data: IDX (MNIST's format), CSV and NPZ.

Each export holds the 28x28 network inputs exactly as stored (uint8, 255 =
ink, the MNIST convention) with their current labels, in drawing-id order so
that two exports of the same selection are identical. The IDX pair is what
any MNIST loader reads; the CSV and NPZ add what is known about each drawing
(the original label before relabelling, the prediction, the review status).
A drawing whose stored input is damaged is left out and its id reported.
"""

import csv
import io
import struct
import zipfile
from dataclasses import dataclass, field

import numpy as np
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce

from recognizer.models import Drawing, DrawingLabelChange
from recognizer.thumbnails import INPUT_BYTES, INPUT_SIDE

IDX_IMAGES_NAME = "drawings-images-idx3-ubyte"
IDX_LABELS_NAME = "drawings-labels-idx1-ubyte"
INDEX_NAME = "drawings-index.csv"

META_COLUMNS = [
    "id", "label", "original_label", "prediction", "confidence", "status", "player_id",
    "player_name", "room_code", "game_id", "round_number", "model_version", "created",
]


@dataclass
class ExportData:
    ids: np.ndarray
    images: np.ndarray  # uint8 (N, 28, 28)
    labels: np.ndarray  # uint8 (N,)
    rows: list  # one dict of META_COLUMNS per drawing
    skipped: list = field(default_factory=list)  # ids of drawings with a damaged input

    def __len__(self):
        return len(self.ids)


def collect(queryset):
    """Read the selected drawings into arrays (one query, in id order)."""
    first_label = Subquery(
        DrawingLabelChange.objects.filter(drawing=OuterRef("pk"))
        .order_by("created", "id").values("old_label")[:1]
    )
    values = (
        Drawing.objects.filter(pk__in=queryset.order_by().values("pk"))
        .annotate(original_label=Coalesce(first_label, "label"))
        .order_by("id")
        .values(
            "id", "label", "original_label", "prediction", "confidence", "status", "player_id",
            "player_name", "room_code", "game_id", "round_number", "model_version__version",
            "created", "input_image",
        )
    )
    ids, images, labels, rows, skipped = [], [], [], [], []
    for row in values.iterator(chunk_size=500):
        data = bytes(row.pop("input_image") or b"")
        if len(data) != INPUT_BYTES or not 0 <= row["label"] <= 9:
            skipped.append(row["id"])
            continue
        ids.append(row["id"])
        images.append(np.frombuffer(data, dtype=np.uint8))
        labels.append(row["label"])
        row["model_version"] = row.pop("model_version__version") or ""
        row["created"] = row["created"].isoformat() if row["created"] else ""
        row["confidence"] = round(float(row["confidence"]), 6)
        rows.append(row)
    count = len(ids)
    image_array = (
        np.stack(images).reshape(count, INPUT_SIDE, INPUT_SIDE)
        if count else np.zeros((0, INPUT_SIDE, INPUT_SIDE), dtype=np.uint8)
    )
    return ExportData(
        ids=np.asarray(ids, dtype=np.int64),
        images=image_array,
        labels=np.asarray(labels, dtype=np.uint8),
        rows=rows,
        skipped=skipped,
    )


def idx_bytes(array):
    """An IDX file of unsigned bytes: magic 0x0000080N, N big-endian dimensions, the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


# A spreadsheet reads a cell that starts with one of these as a formula:
# a player named =HYPERLINK("//e.vil") becomes a live link in whoever opens the
# export. OWASP's rule: prefix such text with a single quote, which spreadsheets
# show as text and do not display. Numbers are written by us, not players, and
# stay numbers (a negative one would otherwise gain a quote).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A CSV cell that no spreadsheet evaluates as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _csv_text(header, rows):
    buffer = io.StringIO()
    # RFC 4180's CRLF: with "\n" as the terminator the csv module leaves a CR
    # inside a name unquoted, and readers split the row there.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
    return buffer.getvalue()


def idx_zip(data):
    """A zip of the IDX pair, plus an index that maps each sample to its drawing."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(IDX_IMAGES_NAME, idx_bytes(data.images))
        archive.writestr(IDX_LABELS_NAME, idx_bytes(data.labels))
        index = _csv_text(
            ["index", *META_COLUMNS],
            ([i, *(row[c] for c in META_COLUMNS)] for i, row in enumerate(data.rows)),
        )
        archive.writestr(INDEX_NAME, index)
    return buffer.getvalue()


def csv_bytes(data):
    """One row per drawing: what is known about it, then its 784 pixels row by row."""
    pixel_columns = [f"pixel{i}" for i in range(INPUT_BYTES)]
    flat = data.images.reshape(len(data), INPUT_BYTES)
    text = _csv_text(
        META_COLUMNS + pixel_columns,
        ([*(row[c] for c in META_COLUMNS), *flat[i].tolist()] for i, row in enumerate(data.rows)),
    )
    return text.encode("utf-8")


def npz_bytes(data):
    """Arrays in one compressed .npz, all loadable with allow_pickle=False."""

    def strings(column):
        return np.asarray([str(row[column]) for row in data.rows], dtype=str)

    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        ids=data.ids,
        images=data.images,
        labels=data.labels,
        original_labels=np.asarray([r["original_label"] for r in data.rows], dtype=np.uint8),
        predictions=np.asarray([r["prediction"] for r in data.rows], dtype=np.uint8),
        confidences=np.asarray([r["confidence"] for r in data.rows], dtype=np.float32),
        statuses=strings("status"),
        player_ids=strings("player_id"),
        room_codes=strings("room_code"),
        model_versions=strings("model_version"),
    )
    return buffer.getvalue()


FORMATS = {
    # name: (builder, file extension, content type)
    "idx": (idx_zip, "zip", "application/zip"),
    "csv": (csv_bytes, "csv", "text/csv; charset=utf-8"),
    "npz": (npz_bytes, "npz", "application/octet-stream"),
}


def export(queryset, fmt):
    """(content bytes, file extension, content type, ExportData) for `fmt`."""
    try:
        builder, extension, content_type = FORMATS[fmt]
    except KeyError:
        names = ", ".join(FORMATS)
        raise ValueError(f"unknown export format {fmt!r}: use one of {names}") from None
    data = collect(queryset)
    return builder(data), extension, content_type, data
