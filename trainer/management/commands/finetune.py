"""`python manage.py finetune`: train a new model version (see trainer/finetune.py)."""

import shlex
import sys

from django.core.management.base import BaseCommand, CommandError

from trainer import confidence, drawings, styles_set
from trainer.activation import DEFAULT_TOLERANCE
from trainer.finetune import FinetuneError, FinetuneOptions, run_finetune


def command_line(argv, opts):
    """The command as typed, to be recorded with the model it makes."""
    if len(argv) > 1 and argv[1] == "finetune":
        return shlex.join(["python", "manage.py", *argv[1:]])
    # Called from Python (call_command): the options are all there is.
    given = {k: v for k, v in sorted(opts.items())
             if k not in ("verbosity", "settings", "pythonpath", "traceback", "no_color",
                          "force_color", "skip_checks") and v not in (None, False)}
    return "call_command('finetune', " + ", ".join(f"{k}={v!r}" for k, v in given.items()) + ")"


class Command(BaseCommand):
    help = (
        "Train a new model version on MNIST train plus the approved player drawings (some "
        "players' drawings held out for evaluation), starting from the active version (or "
        "from scratch), and activate it if it is not worse."
    )

    def add_arguments(self, parser):
        # One declaration per flag, in the order --help lists them: long, but flat.
        parser.add_argument("--epochs", type=int, default=3,
                            help="passes over the training data (default %(default)s)")
        parser.add_argument("--batch-size", type=int, default=128,
                            help="samples per training step (default %(default)s)")
        parser.add_argument("--lr", type=float, default=None,
                            help="peak learning rate (default 3e-3 from scratch, 5e-4 otherwise)")
        parser.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw",
                            help="AdamW, or SGD with Nesterov momentum (default %(default)s)")
        parser.add_argument("--label-smoothing", type=float, default=0.05,
                            help="share of the target spread over the other digits; the "
                            "temperature fitted after training restores confident "
                            "probabilities (default %(default)s)")
        parser.add_argument("--weight-decay", type=float, default=1e-4,
                            help="AdamW/SGD weight decay on weights, not on biases and norms "
                            "(default %(default)s)")
        parser.add_argument("--no-augment", action="store_true",
                            help="train on the images as they are")
        parser.add_argument("--nchw", action="store_true",
                            help="train in torch's default NCHW layout instead of channels-last "
                            "on the CPU: slower; versions whose training record has no "
                            "memory_format were trained in it")
        parser.add_argument("--head-only", action="store_true",
                            help="train only the dense layers, the convolutions frozen as the "
                            "active version has them (trainer/head_only.py): each step costs "
                            "about a quarter of a full one")
        parser.add_argument("--canvas-train", type=int, default=0, metavar="N",
                            help="also train on the first N MNIST train digits redrawn the way "
                                 "the site's canvas draws (built once, then cached)")
        parser.add_argument("--styles-train", type=int, default=0, metavar="N",
                            help="also train on N MNIST train digits written in the styles of "
                            "trainer/styles.py (slashed zeros, flagged ones, crossed sevens, ...; "
                            "the same number per style; built once, then cached)")
        parser.add_argument("--styles-per-style", type=int,
                            default=styles_set.DEFAULT_PER_STYLE, metavar="N",
                            help="MNIST test digits per style in the styles evaluation set "
                            "(default %(default)s; 0 skips it)")
        parser.add_argument("--calibration-holdout", type=int,
                            default=confidence.DEFAULT_HOLDOUT, metavar="N",
                            help="keep the last N MNIST train digits out of training and fit the "
                            "new version's temperature on them, redrawn canvas-style and in the "
                            "styles (default %(default)s; 0: no calibration, temperature 1)")
        parser.add_argument("--workers", type=int, default=None,
                            help="processes that render canvas-style and styles digits "
                            "(default: every core, at most 16)")
        parser.add_argument("--seed", type=int, default=0,
                            help="seeds the weights, shuffling and augmentation; the same seed "
                            "on the same machine gives the same weights (default %(default)s)")
        parser.add_argument("--data-dir", default=None,
                            help="folder with the MNIST IDX files (default: MNIST_DATA_DIR)")
        parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                            help="where to train: auto takes cuda when torch sees a GPU "
                            "(default %(default)s)")
        parser.add_argument("--threads", type=int, default=None,
                            help="CPU threads for torch (default: torch's choice)")
        parser.add_argument("--limit", type=int, default=None,
                            help="use only N training and N test samples (quick runs)")
        parser.add_argument("--dry-run", action="store_true",
                            help="load the data, build everything, train one batch, write nothing")
        parser.add_argument("--snapshots", default=None, metavar="DIR",
                            help="keep the network after 0, 1, 10, 100 and 1000 steps and at "
                            "the end of each epoch in DIR, in float16, with snapshots.json "
                            "(trainer/snapshots.py; the lesson \"How it learned\" shows them)")
        parser.add_argument("--output", default=None,
                            help="write the weights to this file (and a manifest.json beside it)")
        parser.add_argument("--from-scratch", action="store_true",
                            help="start from random weights instead of the active version")
        parser.add_argument("--force", action="store_true",
                            help="activate the new version even if it is worse")
        parser.add_argument("--no-activate", action="store_true",
                            help="register the new version but leave it inactive")
        parser.add_argument("--include-pending", action="store_true",
                            help="use drawings not reviewed yet too (rejected ones never)")
        parser.add_argument("--holdout-fraction", type=float,
                            default=drawings.DEFAULT_HOLDOUT_FRACTION,
                            help="share of players whose drawings are kept for evaluation, "
                            "never trained on (default %(default)s)")
        parser.add_argument("--drawings-weight", type=float, default=drawings.DEFAULT_WEIGHT,
                            help="how many times more often a collected drawing is trained on "
                            "than an MNIST digit (default %(default)s)")
        parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                            help="percentage points of MNIST test and canvas-style accuracy "
                            "a new version may lose and still be activated "
                            "(default %(default)s)")

    def handle(self, *args, **opts):
        options = FinetuneOptions(
            epochs=opts["epochs"], batch_size=opts["batch_size"], lr=opts["lr"],
            seed=opts["seed"], data_dir=opts["data_dir"], device=opts["device"],
            limit=opts["limit"], dry_run=opts["dry_run"], output=opts["output"],
            from_scratch=opts["from_scratch"], force=opts["force"],
            activate=not opts["no_activate"], optimizer=opts["optimizer"],
            label_smoothing=opts["label_smoothing"], weight_decay=opts["weight_decay"],
            augment=not opts["no_augment"], channels_last=not opts["nchw"],
            head_only=opts["head_only"],
            threads=opts["threads"], verbosity=opts["verbosity"],
            canvas_train=opts["canvas_train"], styles_train=opts["styles_train"],
            styles_per_style=opts["styles_per_style"],
            calibration_holdout=opts["calibration_holdout"], workers=opts["workers"],
            include_pending=opts["include_pending"], holdout_fraction=opts["holdout_fraction"],
            drawings_weight=opts["drawings_weight"], tolerance=opts["tolerance"],
            snapshots=opts["snapshots"], command_line=command_line(sys.argv, opts),
        )

        def log(message):
            if options.verbosity >= 1:
                self.stdout.write(message)
                self.stdout.flush()

        try:
            run_finetune(options, log=log)
        except FinetuneError as exc:
            raise CommandError(str(exc)) from exc
