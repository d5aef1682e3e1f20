"""The training digits that excite each deeper map most.

Lesson 1's neuron panel shows, for a map of conv2-conv4 or a dense neuron,
the few digits it answers most strongly, which says more about what the map
looks for than its weights can. A map's answer to a digit is its largest
value anywhere (a dense neuron has one value).

They come from a fixed sample of MNIST's training digits (TOP_DIGITS_SAMPLE,
6,000 of the 60,000: the same ones every time) and the newest approved
player drawings (up to TOP_DIGITS_PLAYERS), run through the served model
once per model version. That costs a few seconds, so it happens in the
background, one computation at a time (a Memo with one worker); the result
is kept on disk under settings.VAR_DIR, keyed by the weights' sha256, and in
memory, so a page view costs a dictionary lookup or, after a restart, one
small file read (about 0.4 MB).

The page gets the labels as text (for the screen reader and the captions)
and one PNG sprite per layer: a row per map, SHOWN digits in each row.
"""

import functools
import hashlib
import logging
import re
import threading
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection
from django.urls import reverse

from recognizer import mnist_files
from recognizer.atomic_files import atomic_writer
from recognizer.images import png_bytes
from recognizer.inference import ModelUnavailable, get_service
from recognizer.models import Drawing
from recognizer.teaching import gallery, unavailable
from recognizer.teaching.memo import Memo

# torch and the network: imported where a model is used (recognizer/checkpoints.py).

logger = logging.getLogger(__name__)

LAYERS = ("conv2", "conv3", "conv4", "dense")
# Digits shown per map: 6 at 40 px fit a 360 px phone screen beside nothing.
SHOWN = 6
# One forward pass of 500 digits keeps every layer's activations in about
# 60 MB (conv2 alone: 500 x 32 x 28 x 28 floats).
BATCH = 500
SEED = 15

# One computation at a time, whatever asks (a class opening the page at once
# waits for the same one); two versions kept, the active one and the last.
compute_cache = Memo(2, workers=1, name="teaching-top-digits")
_ready_lock = threading.Lock()
_ready = {}  # (sha256, sample, players) -> TopDigits; at most one kept


@dataclass
class TopDigits:
    """For each layer: pixels (maps, SHOWN, 28, 28), labels and sources of its top digits."""

    sha256: str
    sample: int
    players: int
    pixels: dict
    labels: dict
    from_players: dict
    _png: dict = field(default_factory=dict)

    def png(self, layer):
        """The layer's sprite: one row per map, SHOWN digits per row, ink dark on white."""
        if layer not in self._png:
            pixels = self.pixels[layer]
            maps = pixels.shape[0]
            sheet = pixels.transpose(0, 2, 1, 3).reshape(maps * 28, SHOWN * 28)
            self._png[layer] = png_bytes(sheet, on_white=True)
        return self._png[layer]

    @functools.cached_property
    def key(self):
        """The sprites' address: the weights and a digest of the digits chosen.
        Computations with other samples, or over other approved drawings, on
        other machines or after a restart, get other addresses, so a page's
        labels and the sprite a browser kept always belong together."""
        digest = hashlib.sha256()
        for layer in LAYERS:
            digest.update(np.ascontiguousarray(self.pixels[layer]).tobytes())
            digest.update(np.ascontiguousarray(self.labels[layer]).tobytes())
        return f"{self.sha256[:16]}-{digest.hexdigest()[:16]}"

    def describe(self):
        """What the page needs besides the sprites: small (about 3 kB for 288 maps)."""
        return {
            "shown": SHOWN,
            "sample": self.sample,
            "players": self.players,
            "key": self.key,
            "layers": {
                layer: {
                    "maps": int(self.labels[layer].shape[0]),
                    "labels": "".join(str(int(v)) for v in self.labels[layer].ravel()),
                    "players": "".join("1" if v else "0" for v in self.from_players[layer].ravel()),
                }
                for layer in LAYERS
            },
        }


def sample_size():
    return settings.TEACHING_TOP_DIGITS_SAMPLE


def players_limit():
    return settings.TEACHING_TOP_DIGITS_PLAYERS


def cache_path(sha256, sample, players):
    return gallery.cache_dir() / f"top-digits-{sha256[:16]}-{sample}-{players}.npz"


def training_sample(count):
    """(images uint8 (count, 28, 28), labels): the same MNIST training digits every time."""
    try:
        images, labels = mnist_files.load_local_split("train", data_dir=settings.MNIST_DATA_DIR)
    except mnist_files.MnistError as exc:
        raise gallery.DataUnavailable(str(exc)) from exc
    chosen = np.sort(np.random.default_rng(SEED).choice(len(images), min(count, len(images)),
                                                         replace=False))
    return np.asarray(images[chosen]), np.asarray(labels[chosen], dtype=np.int64)


def newest_player_drawings(limit):
    """(images, labels) of up to `limit` newest approved drawings with a valid input."""
    if limit <= 0:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    rows = (Drawing.objects.filter(status=Drawing.Status.APPROVED)
            .order_by("-id").values_list("label", "input_image")[:limit])
    images, labels = [], []
    for label, data in rows:
        data = bytes(data) if data is not None else b""
        if len(data) == 784:
            images.append(np.frombuffer(data, dtype=np.uint8).reshape(28, 28))
            labels.append(label)
    if not images:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def strongest_answers(model, images):
    """{layer: (N, maps) float32}: each map's largest value for each digit."""
    import torch

    answers = {layer: [] for layer in LAYERS}
    with torch.inference_mode():
        for start in range(0, len(images), BATCH):
            batch = torch.tensor(images[start:start + BATCH])[:, None].float().div_(255.0)
            _, activations = model.forward_with_activations(batch)
            for layer in LAYERS:
                value = activations[layer]
                if value.dim() == 4:
                    value = value.amax(dim=(2, 3))
                answers[layer].append(value.numpy().astype(np.float32))
    return {layer: np.concatenate(parts) for layer, parts in answers.items()}


def compute(model, sha256, sample, players):
    """TopDigits of `model` over `sample` training digits and `players` drawings."""
    images, labels = training_sample(sample)
    try:
        drawn, drawn_labels = newest_player_drawings(players)
    finally:
        connection.close()  # a worker thread of its own: give its connection back
    every = np.concatenate([images, drawn])
    every_label = np.concatenate([labels, drawn_labels])
    from_players = np.arange(len(every)) >= len(images)
    answers = strongest_answers(model, every)
    pixels, top_labels, top_players = {}, {}, {}
    for layer in LAYERS:
        # (maps, SHOWN): the digits with the largest answers, largest first;
        # a stable sort so that ties keep the sample's order.
        order = np.argsort(-answers[layer], axis=0, kind="stable")[:SHOWN].T
        pixels[layer] = every[order]
        top_labels[layer] = every_label[order]
        top_players[layer] = from_players[order]
    return TopDigits(sha256, len(images), len(drawn), pixels, top_labels, top_players)


def _save(result, path):
    arrays = {}
    for layer in LAYERS:
        arrays[f"{layer}_pixels"] = result.pixels[layer]
        arrays[f"{layer}_labels"] = result.labels[layer]
        arrays[f"{layer}_players"] = result.from_players[layer]
    arrays["counts"] = np.asarray([result.sample, result.players])
    with atomic_writer(path) as handle:
        np.savez_compressed(handle, **arrays)


def _load(path, sha256):
    with np.load(path) as data:
        sample, players = (int(v) for v in data["counts"])
        return TopDigits(
            sha256, sample, players,
            {layer: data[f"{layer}_pixels"] for layer in LAYERS},
            {layer: data[f"{layer}_labels"] for layer in LAYERS},
            {layer: data[f"{layer}_players"] for layer in LAYERS},
        )


def _keep(key, result):
    with _ready_lock:
        _ready.clear()
        _ready[key] = result
    return result


def _compute_and_store(model, key):
    sha256, sample, players = key
    logger.info("computing the top digits of each map for %s", sha256[:16])
    result = compute(model, sha256, sample, players)
    _save(result, cache_path(*key))
    return _keep(key, result)


def ready_for_key(key):
    """The TopDigits whose describe()["key"] is `key`, or None: from memory, or
    from the file (another process of the site may have served the page)."""
    with _ready_lock:
        for result in _ready.values():
            if result.key == key:
                return result
    if not re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]{16}", key):
        return None
    weights = key.split("-")[0]
    path = cache_path(weights, sample_size(), players_limit())
    try:
        result = _load(path, weights)
    except (OSError, ValueError, KeyError):
        return None
    # Another computation of these weights (other drawings approved since):
    # not the digits the page that asked was given.
    if result.key != key:
        return None
    return _keep((weights, sample_size(), players_limit()), result)


def current(model, sha256):
    """The TopDigits of these weights, or None while they are being computed.

    Starts the computation if nobody has; raises gallery.DataUnavailable when
    the MNIST files are missing. Blocking only for a small file read after a
    restart: call it from a worker thread.
    """
    key = (sha256, sample_size(), players_limit())
    with _ready_lock:
        if key in _ready:
            return _ready[key]
    path = cache_path(*key)
    if path.exists():
        try:
            return _keep(key, _load(path, sha256))
        except (OSError, ValueError, KeyError):
            logger.warning("top digits cache %s unreadable: computing it again", path.name)
    # A missing file is known at once (a few stat calls), not after a
    # computation in the background that every view would start again.
    data_dir = settings.MNIST_DATA_DIR
    _, missing = mnist_files.find_local(data_dir, ("train",))
    if missing:
        raise gallery.DataUnavailable(
            mnist_files.missing_message(data_dir, [spec for _, spec in missing]))
    future = compute_cache.get(key, lambda: _compute_and_store(model, key))
    if future.done():
        return future.result()
    return None


def forget():
    """Drop what is kept in memory (the files stay)."""
    with _ready_lock:
        _ready.clear()
    compute_cache.clear()


PREPARING = ("The training digits that excite each map most are being worked out for this "
             "model (a few seconds, once per model version): reload the page in a moment to "
             "see them.")


def served_state():
    """What lesson 1's page embeds: describe() of the served model's TopDigits, or a
    note ({"note": ..., "preparing": bool}); None without a model. Blocking: a worker thread.
    """
    try:
        loaded = get_service().refresh()
    except ModelUnavailable:
        return None
    try:
        result = current(loaded.model, loaded.sha256)
    except gallery.DataUnavailable as exc:
        return {"note": unavailable.explained(unavailable.TRAINING_DIGITS, exc, "how-it-works"),
                "preparing": False}
    except Exception as exc:  # noqa: BLE001 - the lesson still works without this part
        logger.exception("top digits of %s failed", loaded.version)
        return {"note": unavailable.explained(unavailable.TOP_DIGITS_FAILED, exc, "how-it-works"),
                "preparing": False}
    if result is None:
        return {"note": PREPARING, "preparing": True}
    described = result.describe()
    for layer, entry in described["layers"].items():
        entry["sprite"] = reverse("teaching:top_digits", args=[described["key"], layer])
    return described
