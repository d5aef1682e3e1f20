"""The activation rule of `finetune` (trainer/activation.py), without training anything."""

from trainer.activation import DEFAULT_TOLERANCE, activation_decision, gate

SETS = ["mnist_test", "canvas", "heldout_drawings"]


def results(mnist, canvas, heldout):
    return {"mnist_test": {"accuracy": mnist}, "canvas": {"accuracy": canvas},
            "heldout_drawings": {"accuracy": heldout}}


ACTIVE = results(0.9900, 0.9500, 0.7000)


def test_a_version_not_worse_anywhere_is_wanted():
    wanted, reasons = gate(results(0.9910, 0.9500, 0.7200), ACTIVE, SETS)
    assert wanted
    assert reasons == [
        "mnist_test: 99.1000% vs 99.0000% (not worse)",
        "canvas: 95.0000% vs 95.0000% (not worse)",
        "heldout_drawings: 72.0000% vs 70.0000% (not worse)",
    ]


def test_mnist_and_canvas_may_lose_the_tolerance_and_the_held_out_drawings_nothing():
    assert DEFAULT_TOLERANCE == 0.2
    wanted, reasons = gate(results(0.9880, 0.9480, 0.7000), ACTIVE, SETS)
    assert wanted
    assert reasons[0] == "mnist_test: 98.8000% vs 99.0000% (within the 0.2-point tolerance)"
    assert reasons[1] == "canvas: 94.8000% vs 95.0000% (within the 0.2-point tolerance)"
    assert not gate(results(0.9879, 0.9500, 0.7000), ACTIVE, SETS)[0]
    assert not gate(results(0.9900, 0.9479, 0.7000), ACTIVE, SETS)[0]
    wanted, reasons = gate(results(0.9950, 0.9600, 0.6999), ACTIVE, SETS)
    assert not wanted and reasons[2] == "heldout_drawings: 69.9900% vs 70.0000% (worse)"


def test_the_tolerance_option_widens_or_narrows_it():
    assert gate(results(0.9800, 0.9400, 0.7000), ACTIVE, SETS, tolerance=1.0)[0]
    assert not gate(results(0.9899, 0.9500, 0.7000), ACTIVE, SETS, tolerance=0.0)[0]


def test_force_overrules_the_gate_and_says_so():
    worse = results(0.9000, 0.9000, 0.5000)
    wanted, reasons = gate(worse, ACTIVE, SETS, force=True)
    assert wanted and reasons[-1] == "--force: activated although worse"
    # Nothing to overrule: no word about it.
    wanted, reasons = gate(ACTIVE, ACTIVE, SETS, force=True)
    assert wanted and "--force" not in " ".join(reasons)


def test_no_activate_wins_over_everything():
    assert gate(ACTIVE, ACTIVE, SETS, activate=False) == (False, ["--no-activate: left inactive"])
    assert gate(ACTIVE, None, SETS, activate=False, force=True) == (
        False, ["--no-activate: left inactive"])


def test_without_a_usable_active_version_the_new_one_is_wanted():
    assert gate(results(0.5, 0.5, 0.5), None, SETS) == (
        True, ["no usable active version to compare with"])


def test_only_the_named_sets_count():
    new = {**results(0.9900, 0.9500, 0.7000), "styles": {"accuracy": 0.10}}
    active = {**ACTIVE, "styles": {"accuracy": 0.90}}
    wanted, reasons = gate(new, active, SETS)
    assert wanted and len(reasons) == 3


def test_a_set_measured_on_one_side_only_is_reported_not_judged():
    new = results(0.9900, 0.9500, 0.7000)
    active = {"mnist_test": {"accuracy": 0.9900}, "canvas": {"accuracy": 0.9500}}
    wanted, reasons = gate(new, active, SETS)
    assert wanted and reasons[2] == "heldout_drawings: not measured on both models"


def test_the_gate_then_the_active_version_at_the_end():
    wanted, reasons = gate(results(0.9910, 0.9500, 0.7200), ACTIVE, SETS)
    assert activation_decision(wanted, reasons, "v1", "v1") == (True, reasons)
    activate, final = activation_decision(wanted, reasons, "v1", "v2")
    assert not activate and final[:-1] == reasons
    assert "the active version changed during training (from v1 to v2" in final[-1]
