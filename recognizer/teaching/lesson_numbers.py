"""The numbers lesson 1 quotes, computed from the code and the model being served.

A lesson that says "paper becomes -0.42" or "14 of the 32 maps respond to
blank paper" must say what this network does, not what some network did when
the text was written: a new model version changes the second number, a change
to the normalisation or to the preprocessing changes the others. So the page
renders them from

- recognizer.network's MNIST_MEAN and MNIST_STD: the network's first step,
  (x - mean) / std, which turns paper (0) and full ink (1) into other values;
- the first convolution block of the model being served, run on blank paper;
- recognizer.preprocessing's pen width and centre-of-mass target and tolerance.
"""

import threading

from recognizer import preprocessing
from recognizer.inference import ModelUnavailable, get_service

# torch and the network: imported where a model is used (recognizer/checkpoints.py).

# Blank-paper answers by (version id, weights): one version is served at a time.
_blank_paper = {}
_blank_paper_lock = threading.Lock()


def normalised(value):
    """What the network's first step makes of a pixel value in [0, 1]."""
    from recognizer import network

    return (value - network.MNIST_MEAN) / network.MNIST_STD


def blank_paper_response(model):
    """How the first convolution block of `model` answers a blank page.

    {"maps": conv1's maps, "responding": maps above zero on the paper,
    "border_only": maps above zero only along the border}. Away from the
    border every position sees the same 3x3 of paper, so each map is one
    number there. Along the border the filter reaches past the image, where
    the convolution pads with 0 after the normalisation: a faint grey, not
    paper, so a map can light up there alone.
    """
    import torch

    with torch.inference_mode():
        _, activations = model.forward_with_activations(torch.zeros(1, 1, 28, 28))
    maps = activations["conv1"][0]
    inside = maps[:, 1:-1, 1:-1].amax(dim=(1, 2)) > 0
    anywhere = maps.amax(dim=(1, 2)) > 0
    return {
        "maps": int(maps.shape[0]),
        "responding": int(inside.sum()),
        "border_only": int((anywhere & ~inside).sum()),
    }


def served_blank_paper():
    """blank_paper_response of the model being served, with its version; None without one.

    Blocking (the database, a forward pass the first time): a worker thread.
    """
    try:
        loaded = get_service().refresh()
    except ModelUnavailable:
        return None
    key = (loaded.version_id, loaded.sha256)
    with _blank_paper_lock:
        if key not in _blank_paper:
            _blank_paper.clear()
            _blank_paper[key] = {"version": loaded.version,
                                 **blank_paper_response(loaded.model)}
        return _blank_paper[key]


def how_it_works():
    """Every number lesson 1's text quotes."""
    from recognizer import network

    return {
        "mean": network.MNIST_MEAN,
        "std": network.MNIST_STD,
        "paper": normalised(0.0),
        "ink": normalised(1.0),
        "pen_width": preprocessing.PEN_WIDTH,
        "box": preprocessing.BOX,
        "com_target": preprocessing.TARGET_CENTRE,
        "com_tolerance": preprocessing.COM_TOLERANCE,
        "blank_paper": served_blank_paper(),
    }
