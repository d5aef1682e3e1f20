"""What the feedback-loop benchmark reports besides accuracy: its file, the styles set, the gate.

The benchmark itself runs for many minutes (bench/bench_feedback_loop.py);
these check its summaries on a before/after table shaped like finetune's
(trainer.finetune_record.before_after plus styles_set.before_after_rows).
"""

from types import SimpleNamespace

from bench.bench_feedback_loop import gate_summary, results_name, styles_summary
from trainer.simulation import STYLES
from trainer.styles import STYLE_NAMES


def row(before, after):
    return {"count": 300, "before": before, "after": after,
            "change_points": round((after - before) * 100, 4)}


def test_each_style_has_its_own_results_file_and_the_default_keeps_the_old_one():
    assert results_name("tilted") == "feedback_loop"
    assert results_name("continental") == "feedback_loop_continental"
    assert len({results_name(name) for name in STYLES}) == len(STYLES)


def test_styles_set_rows_of_each_player_style_exist_in_the_styles_set():
    for style in STYLES.values():
        assert set(style.styles_set_rows) <= set(STYLE_NAMES), style.name
    assert STYLES["continental"].styles_set_rows == ("seven_bar", "one_flag", "one_serif",
                                                     "slanted")


def test_styles_summary_picks_the_overall_row_and_the_players_habits():
    table = {"mnist_test": row(0.99, 0.98), "styles": row(0.95, 0.97)}
    for name in STYLE_NAMES:
        table[f"styles/{name}"] = row(0.9, 0.91)
    table["styles/seven_bar"] = row(0.8, 0.95)

    summary = styles_summary("continental", table)

    assert summary["overall"] == row(0.95, 0.97)
    assert list(summary["players_style_rows"]) == ["seven_bar", "one_flag", "one_serif",
                                                   "slanted"]
    assert summary["players_style_rows"]["seven_bar"]["change_points"] == 15.0
    # A style whose habits the set does not draw (wide) reports the overall row only.
    assert styles_summary("wide", table) == {"overall": row(0.95, 0.97),
                                             "players_style_rows": {}}
    # A run with --styles-per-style 0 measured no styles set.
    assert styles_summary("continental", {"mnist_test": row(0.99, 0.98)}) == {}


def test_gate_summary_is_the_decision_and_its_reasons():
    refused = SimpleNamespace(activated=False,
                              reasons=("canvas: 97.0000% vs 98.0000% (worse)",))
    assert gate_summary(refused) == {"activated": False,
                                     "reasons": ["canvas: 97.0000% vs 98.0000% (worse)"]}
