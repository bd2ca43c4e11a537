"""experiments/camvid_folds/table.py ranks changes by paired gains against the recipe's noise and
scores only last-epoch weights: checked on run folders made up with known scores."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

TABLE = Path(__file__).parents[1] / "experiments" / "camvid_folds" / "table.py"


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("camvid_folds_table", TABLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_run(root: Path, name: str, scores: dict[str, float], last_epoch: bool = True) -> None:
    run = root / name
    (run / "eval").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "finished", "epochs": 8}))
    (run / "metrics.csv").write_text("epoch,val/miou\n7,0.5\n")
    epoch = 7 if last_epoch else 3
    (run / "eval" / "checkpoint.json").write_text(
        json.dumps({"epoch": epoch, "last_epoch": last_epoch})
    )
    for mode, miou in scores.items():
        (run / "eval" / mode).mkdir()
        (run / "eval" / mode / "eval.json").write_text(json.dumps({"miou": miou / 100}))


def test_a_gain_larger_than_the_noise_enters_and_a_stale_run_is_not_ranked(table, tmp_path):
    # recipe: seeds differ by 1 point on each fold; lite1: +3, +3.5, +2.5, +3 on the same pairs
    base = {("0001TP", 42): 40.0, ("0001TP", 7): 41.0, ("0016E5", 42): 50.0, ("0016E5", 7): 51.0}
    gain = {("0001TP", 42): 3.0, ("0001TP", 7): 3.5, ("0016E5", 42): 2.5, ("0016E5", 7): 3.0}
    for (fold, seed), v in base.items():
        make_run(tmp_path, f"base_{fold}_s{seed}", {"plain": v, "flip": v + 1.5})
        make_run(tmp_path, f"lite1_{fold}_s{seed}", {"plain": v + gain[fold, seed], "flip": v})
    make_run(tmp_path, "ohem_0001TP_s42", {"plain": 60.0}, last_epoch=False)
    make_run(tmp_path, "lite2_0016E5_s42", {"plain": 60.0})  # +10, but one pair decides nothing
    rows = table.collect(tmp_path)
    (header, *body), notes = table.ranking(rows)
    by_change = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    assert set(by_change) == {"base", "lite1", "lite2"}  # the stale ohem run is not ranked
    assert by_change["lite2"]["decision"] == "one pair: undecided"
    assert by_change["base"]["0001TP"] == "40.50 (2)" and by_change["base"]["mean"] == "45.50"
    assert by_change["lite1"]["paired gain"] == "+3.00" and by_change["lite1"]["pairs"] == 4
    assert by_change["lite1"]["sd of gain"] == "0.41" and by_change["lite1"]["decision"] == "enters"
    assert any("1.00 points (0001TP 1.00, 0016E5 1.00)" in n for n in notes)
    ((_, *tta),) = [table.tta_table(rows)]
    flip = next(r for r in tta if r[0] == "flip")
    # flip measured on every scored checkpoint, the stale one has no flip score
    assert flip[2] == 8 and flip[3] == f"{(4 * 1.5 - 12) / 8:+.2f}"  # lite2 has no flip score


def test_a_gain_inside_the_seed_spread_does_not_enter(table, tmp_path):
    for fold, seed, v, g in [("0006R0", 42, 45.0, 1.0), ("0006R0", 7, 48.0, 1.2)]:
        make_run(tmp_path, f"base_{fold}_s{seed}", {"plain": v})
        make_run(tmp_path, f"lite1_{fold}_s{seed}", {"plain": v + g})
    (header, *body), _ = table.ranking(table.collect(tmp_path))
    lite1 = dict(zip(header, next(r for r in body if r[0] == "lite1"), strict=True))
    assert lite1["paired gain"] == "+1.10" and lite1["decision"] == "within the noise"  # spread 3.0


def test_a_fine_tune_for_larger_frames_is_paired_with_the_same_fine_tune_at_the_recipe_size(
    table, tmp_path
):
    # ft360 (more epochs) gains +5 over base, ft450 +1 over ft360 (the resolution's share): inside
    # the recipe's 2-point seed spread
    for fold, seed, v in [("0006R0", 42, 45.0), ("0006R0", 7, 47.0), ("0016E5", 42, 50.0)]:
        make_run(tmp_path, f"base_{fold}_s{seed}", {"plain": v})
        make_run(tmp_path, f"ft360_{fold}_s{seed}", {"plain": v + 5})
        make_run(tmp_path, f"ft450_{fold}_s{seed}", {"plain": v + 6})
    (header, *body), _ = table.ranking(table.collect(tmp_path))
    by_change = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    assert by_change["ft360"]["against"] == "base" and by_change["ft360"]["paired gain"] == "+5.00"
    assert by_change["ft450"]["against"] == "ft360" and by_change["ft450"]["paired gain"] == "+1.00"
    assert by_change["ft450"]["pairs"] == 3 and by_change["ft450"]["decision"] == "within the noise"
