"""Exporting collected drawings as training data: IDX (MNIST's format), CSV and NPZ.

Each export holds the 28x28 network inputs exactly as stored (uint8, 255 =
ink, the MNIST convention) with their current labels, in drawing-id order so
that two exports of the same selection are identical. The IDX pair is what
any MNIST loader reads; the CSV and NPZ add what is known about each drawing
(the original label before relabelling, the prediction, the review status,
how the player's round ended: a drawing the timer cut off may be unfinished).
A drawing whose stored input is damaged is left out and its id reported.

Exports are streamed, never held whole in memory (20,000 drawings make a
60 MB CSV; the database can hold far more):

- CSV goes out row by row as the database cursor yields them, 64 kB at a
  time. How many rows it will have (for the file name and X-Export-Count) is
  counted first with a query that does not read the images.
- IDX and NPZ files state their row count before their rows, and NPZ's
  string columns their longest value, so they are written in one pass over
  the rows into temporary files (in memory up to SPOOL_BYTES, on disk past
  it), assembled into the archive (also spooled) and then sent in chunks. The
  per-row columns kept in memory meanwhile are numbers: about 15 bytes a row.

The responses iterate asynchronously: Django under ASGI reads a synchronous
iterator into a list before sending it, which would undo all of the above.
"""

import csv
import io
import struct
import tempfile
import zipfile
from array import array
from dataclasses import dataclass, field

import numpy as np
from asgiref.sync import sync_to_async
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Length

from recognizer.models import Drawing, DrawingLabelChange
from recognizer.preprocessing import SIZE

# The stored network input (Drawing.input_image, preprocessing.input_to_bytes):
# SIZE x SIZE bytes, row by row.
INPUT_SIDE = SIZE
INPUT_BYTES = SIZE * SIZE

IDX_IMAGES_NAME = "drawings-images-idx3-ubyte"
IDX_LABELS_NAME = "drawings-labels-idx1-ubyte"
INDEX_NAME = "drawings-index.csv"

META_COLUMNS = [
    "id", "label", "original_label", "prediction", "confidence", "status", "player_id",
    "player_name", "room_code", "game_id", "round_number", "model_version", "created",
    "ending", "player_label",
]
NPZ_STRING_COLUMNS = {"statuses": "status", "player_ids": "player_id",
                      "room_codes": "room_code", "model_versions": "model_version",
                      "endings": "ending"}

# Rows fetched from the database at a time.
ROW_BATCH = 500
# Bytes sent per chunk of a response.
CHUNK_BYTES = 64 * 1024
# A temporary file stays in memory up to this size, then moves to disk.
SPOOL_BYTES = 8 * 1024 * 1024


@dataclass
class Export:
    """An export ready to send: its chunks, what it holds, its type."""

    chunks: object  # a synchronous iterator of bytes with a close()
    count: int
    extension: str
    content_type: str
    skipped: list = field(default_factory=list)  # ids of drawings with a damaged input

    def __len__(self):
        return self.count

    def async_chunks(self):
        """The chunks for an ASGI response: Django under ASGI reads a synchronous
        iterator into a list before sending any of it."""
        return _async_chunks(self.chunks)


def _selection(queryset):
    return Drawing.objects.filter(pk__in=queryset.order_by().values("pk")).order_by("id")


def _values(queryset):
    """The selected drawings, one dict each, in id order."""
    first_label = Subquery(
        DrawingLabelChange.objects.filter(drawing=OuterRef("pk"))
        .order_by("created", "id").values("old_label")[:1]
    )
    return (
        _selection(queryset)
        .annotate(original_label=Coalesce(first_label, "label"))
        .values(
            "id", "label", "original_label", "prediction", "confidence", "status", "player_id",
            "player_name", "room_code", "game_id", "round_number", "model_version__version",
            "created", "ending", "player_label", "input_image",
        )
    )


def _rows(queryset, skipped):
    """(row dict of META_COLUMNS, 784 input bytes) per usable drawing; damaged ids go to skipped."""
    for row in _values(queryset).iterator(chunk_size=ROW_BATCH):
        data = bytes(row.pop("input_image") or b"")
        if len(data) != INPUT_BYTES or not 0 <= row["label"] <= 9:
            skipped.append(row["id"])
            continue
        row["model_version"] = row.pop("model_version__version") or ""
        row["created"] = row["created"].isoformat() if row["created"] else ""
        row["confidence"] = round(float(row["confidence"]), 6)
        yield row, data


# A drawing its player did not correct has no player label: -1 in the NPZ
# (its labels are unsigned bytes, so the column is signed), "" in CSV.
NO_PLAYER_LABEL = -1


def survey(queryset):
    """(usable drawings, ids of damaged ones) without reading the images."""
    damaged = (Q(input_length__isnull=True) | ~Q(input_length=INPUT_BYTES)
               | Q(label__lt=0) | Q(label__gt=9))
    selection = _selection(queryset).annotate(input_length=Length("input_image"))
    skipped = list(selection.filter(damaged).values_list("id", flat=True))
    return selection.exclude(damaged).count(), skipped


# -- CSV -------------------------------------------------------------------------

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


class _CsvLines:
    """csv.writer onto a buffer that is emptied as lines are taken."""

    def __init__(self):
        self.buffer = io.StringIO()
        # RFC 4180's CRLF: with "\n" as the terminator the csv module leaves a CR
        # inside a name unquoted, and readers split the row there.
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")

    def write(self, cells):
        self.writer.writerow([spreadsheet_safe(cell) for cell in cells])

    def take(self):
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text.encode("utf-8")


def csv_chunks(queryset):
    """The CSV, in chunks of about CHUNK_BYTES: what is known about each drawing,
    then its 784 pixels row by row."""
    lines = _CsvLines()
    lines.write(META_COLUMNS + [f"pixel{i}" for i in range(INPUT_BYTES)])
    yield lines.take()
    for row, data in _rows(queryset, []):
        lines.write([*(row[c] for c in META_COLUMNS), *data])
        if lines.buffer.tell() >= CHUNK_BYTES:
            yield lines.take()
    yield lines.take()


# -- IDX and NPZ -----------------------------------------------------------------


def _spool():
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)


def _copy(source, target):
    source.seek(0)
    while chunk := source.read(CHUNK_BYTES):
        target.write(chunk)


def idx_header(shape):
    """An IDX file's header for unsigned bytes: magic 0x0000080N, N big-endian dimensions."""
    return struct.pack(">I", 0x0800 | len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def idx_zip(queryset, output):
    """Write a zip of the IDX pair, plus an index that maps each sample to its drawing."""
    skipped, labels = [], bytearray()
    with _spool() as images, _spool() as index:
        lines = _CsvLines()
        lines.write(["index", *META_COLUMNS])
        for count, (row, data) in enumerate(_rows(queryset, skipped)):
            images.write(data)
            labels.append(row["label"])
            lines.write([count, *(row[c] for c in META_COLUMNS)])
            if lines.buffer.tell() >= CHUNK_BYTES:
                index.write(lines.take())
        index.write(lines.take())
        count = len(labels)
        with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            with archive.open(IDX_IMAGES_NAME, "w", force_zip64=True) as entry:
                entry.write(idx_header((count, INPUT_SIDE, INPUT_SIDE)))
                _copy(images, entry)
            archive.writestr(IDX_LABELS_NAME, idx_header((count,)) + bytes(labels))
            with archive.open(INDEX_NAME, "w", force_zip64=True) as entry:
                _copy(index, entry)
    return count, skipped


def _npy_header(descr, shape):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def npz(queryset, output):
    """Write the arrays as one compressed .npz, all loadable with allow_pickle=False."""
    skipped = []
    ids, confidences = array("q"), array("f")
    labels, originals, predictions = bytearray(), bytearray(), bytearray()
    player_labels = array("b")
    # Strings of a column, length-prefixed UTF-8, and the longest in characters.
    strings = {name: [_spool(), 1] for name in NPZ_STRING_COLUMNS}
    try:
        with _spool() as images:
            for row, data in _rows(queryset, skipped):
                images.write(data)
                ids.append(row["id"])
                labels.append(row["label"])
                originals.append(row["original_label"])
                predictions.append(row["prediction"])
                confidences.append(row["confidence"])
                player_label = row["player_label"]
                player_labels.append(NO_PLAYER_LABEL if player_label is None else player_label)
                for name, column in NPZ_STRING_COLUMNS.items():
                    text = str(row[column])
                    encoded = text.encode("utf-8")
                    strings[name][0].write(struct.pack("<I", len(encoded)) + encoded)
                    strings[name][1] = max(strings[name][1], len(text))
            count = len(ids)
            with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                def small(name, values, dtype):
                    buffer = io.BytesIO()
                    np.save(buffer, np.asarray(values, dtype=dtype))
                    archive.writestr(f"{name}.npy", buffer.getvalue())

                small("ids", ids, np.int64)
                with archive.open("images.npy", "w", force_zip64=True) as entry:
                    entry.write(_npy_header("|u1", (count, INPUT_SIDE, INPUT_SIDE)))
                    _copy(images, entry)
                small("labels", labels, np.uint8)
                small("original_labels", originals, np.uint8)
                small("predictions", predictions, np.uint8)
                small("confidences", confidences, np.float32)
                small("player_labels", player_labels, np.int8)
                for name, (spooled, longest) in strings.items():
                    with archive.open(f"{name}.npy", "w", force_zip64=True) as entry:
                        entry.write(_npy_header(f"<U{longest}", (count,)))
                        spooled.seek(0)
                        for _ in range(count):
                            (size,) = struct.unpack("<I", spooled.read(4))
                            text = spooled.read(size).decode("utf-8")
                            entry.write(text.encode("utf-32-le").ljust(longest * 4, b"\0"))
    finally:
        for spooled, _ in strings.values():
            spooled.close()
    return count, skipped


# -- sending ---------------------------------------------------------------------


async def _async_chunks(chunks):
    """Synchronous chunks (database and file work) stepped through in Django's
    sync thread, one chunk at a time."""
    iterator = iter(chunks)
    step = sync_to_async(next, thread_sensitive=True)
    try:
        while (chunk := await step(iterator, None)) is not None:
            if chunk:
                yield chunk
    finally:
        await sync_to_async(chunks.close, thread_sensitive=True)()


class _FileChunks:
    """A spooled file's content in chunks; closing it (done or not) frees the file."""

    def __init__(self, spooled):
        self.spooled = spooled

    def __iter__(self):
        self.spooled.seek(0)
        while chunk := self.spooled.read(CHUNK_BYTES):
            yield chunk
        self.close()

    def close(self):
        self.spooled.close()


def _archive(builder, extension, content_type):
    def build(queryset):
        output = _spool()
        try:
            count, skipped = builder(queryset, output)
        except BaseException:
            output.close()
            raise
        return Export(_FileChunks(output), count, extension, content_type, skipped)
    return build


def _csv(queryset):
    count, skipped = survey(queryset)
    return Export(csv_chunks(queryset), count, "csv", "text/csv; charset=utf-8", skipped)


FORMATS = {
    "idx": _archive(idx_zip, "zip", "application/zip"),
    "csv": _csv,
    "npz": _archive(npz, "npz", "application/octet-stream"),
}


def export(queryset, fmt):
    """An Export of the selected drawings in `fmt` ("idx", "csv" or "npz")."""
    try:
        build = FORMATS[fmt]
    except KeyError:
        names = ", ".join(FORMATS)
        raise ValueError(f"unknown export format {fmt!r}: use one of {names}") from None
    return build(queryset)
