"""Whether a new version becomes active: the rule `finetune` applies.

Two pure functions, in the order a run applies them:

- `gate`, once the new version and the active one are measured on the same
  evaluation sets: --no-activate leaves the new version inactive; with no
  usable active version to compare with it is activated; otherwise it must
  be not worse than the active one on every evaluation set (MNIST test and
  canvas-style within a tolerance), unless --force.
- `activation_decision`, at the end, under the version-row lock: only if the
  version it was compared with is still the active one, since an operator who
  activated or rolled back another version during training has the last word.
"""

from trainer.evaluation import compare

# Percentage points of MNIST test (and canvas-style) accuracy a new version may
# lose and still be activated: a version that learns players' drawings pays
# for it with a few MNIST digits, and a few digits in 10,000 are noise.
DEFAULT_TOLERANCE = 0.2


def gate(new_results, baseline_results, set_names, activate=True, force=False,
         tolerance=DEFAULT_TOLERANCE):
    """The gate's verdict (or the options'): (wanted, reasons).

    `new_results` and `baseline_results` are {set name: metrics} of the new
    version and of the active one, None when there is no usable active
    version; `set_names` are the sets the rule compares on. `activate` False
    is --no-activate, `force` --force, `tolerance` --tolerance.
    """
    if not activate:
        return False, ["--no-activate: left inactive"]
    if baseline_results is None:
        return True, ["no usable active version to compare with"]
    # MNIST and the canvas-style set may lose a little (the tolerance);
    # the held-out drawings, what the run is for, may not.
    tolerances = {"mnist_test": tolerance, "canvas": tolerance}
    not_worse, reasons = compare(new_results, baseline_results, list(set_names), tolerances)
    if force and not not_worse:
        reasons.append("--force: activated although worse")
    return not_worse or force, reasons


def activation_decision(wanted, reasons, compared_with, active_now):
    """Whether to activate the new version: (activate, reasons).

    `wanted` is the gate's verdict (or the options') with its `reasons`;
    `compared_with` is the name of the version active when the run started
    (the one it was measured against; None if none was), `active_now` the
    name of the one active at the end, read under the version-row lock. A run
    takes minutes to hours; if someone activated or rolled back another
    version meanwhile, activating now would silently undo that decision, and
    the comparison was made against a version that is no longer the one
    serving. --force does not override this: it overrules the gate, not an
    operator.
    """
    reasons = list(reasons)
    if not wanted:
        return False, reasons
    if compared_with != active_now:
        reasons.append(
            f"the active version changed during training (from {compared_with or 'none'} to "
            f"{active_now or 'none'}: activated or rolled back meanwhile); not activated, "
            f"run finetune again to compare with {active_now or 'no version'}"
        )
        return False, reasons
    return True, reasons
