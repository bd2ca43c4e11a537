"""experiments/camvid_folds/table.py ranks changes by paired gains against the recipe's noise and
scores only last-epoch weights: checked on run folders made up with known scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import load_script

TABLE = Path(__file__).parents[1] / "experiments" / "camvid_folds" / "table.py"


@pytest.fixture(scope="module")
def table():
    return load_script(TABLE, "camvid_folds_table")


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


def test_a_fine_tune_for_larger_frames_is_paired_with_the_recipe_and_with_the_same_fine_tune(
    table, tmp_path
):
    # ft360 (more epochs) gains +5 over base, ft450 +1 over ft360 (the resolution's share): inside
    # the recipe's 2-point seed spread; against the recipe ft450 gains +6: above it
    for fold, seed, v in [("0006R0", 42, 45.0), ("0006R0", 7, 47.0), ("0016E5", 42, 50.0)]:
        make_run(tmp_path, f"base_{fold}_s{seed}", {"plain": v})
        make_run(tmp_path, f"ft360_{fold}_s{seed}", {"plain": v + 5})
        make_run(tmp_path, f"ft450_{fold}_s{seed}", {"plain": v + 6})
    (header, *body), _ = table.ranking(table.collect(tmp_path))
    rows = {(r[0], r[header.index("against")]): dict(zip(header, r, strict=True)) for r in body}
    assert set(rows) == {("base", "-"), ("ft360", "base"), ("ft450", "base"), ("ft450", "ft360")}
    assert rows["ft360", "base"]["paired gain"] == "+5.00"
    assert rows["ft450", "ft360"]["paired gain"] == "+1.00"
    assert rows["ft450", "ft360"]["decision"] == "within the noise"
    assert rows["ft450", "base"]["paired gain"] == "+6.00"
    assert rows["ft450", "base"]["pairs"] == 3 and rows["ft450", "base"]["decision"] == "enters"


def test_the_frontier_places_changes_by_paired_gain_and_measured_speed(tmp_path):
    frontier = load_script(TABLE.parent / "frontier.py")
    runs, bench = tmp_path / "runs", tmp_path / "bench"
    # base on two folds (40, 50: mean 45); big on 0016E5 only: +3 over base there; slow on both: -1
    for fold, v in [("0001TP", 40.0), ("0016E5", 50.0)]:
        make_run(runs, f"base_{fold}_s42", {"plain": v, "flip": v + 1})
        make_run(runs, f"slow_{fold}_s42", {"plain": v - 1})
    make_run(runs, "big_0016E5_s42", {"plain": 53.0})
    for change, size, int8_ms in [("base", "360x480", 20.0), ("big", "450x600", 40.0),
                                  ("slow", "360x480", 50.0)]:  # fmt: skip
        # base ran two speed rounds (speed.sh REPEAT=2): the second slowed by a busy neighbour
        for rnd, slowdown in [("r1", 1.0), ("r2", 1.6)] if change == "base" else [("r1", 1.0)]:
            (bench / change / rnd).mkdir(parents=True)
            ms = int8_ms * slowdown
            rows = [("openvino-int8", "none", ms), ("openvino-int8", "flip", 2 * ms),
                    ("eager", "none", 4 * ms)]  # fmt: skip
            lines = ["model,input_size,backend,tta,latency_ms_median"]
            lines += [f"{change},{size},{b},{t},{v}" for b, t, v in rows]
            lines.append(f"peer:lraspp,{size},eager,none,1.0")  # peers are not the change
            (bench / change / rnd / "results.csv").write_text("\n".join(lines) + "\n")
    table = frontier._table_module()
    table.write(table.collect(runs), tmp_path)  # folds.csv: the record frontier reads
    args = [str(bench), "--folds", str(tmp_path / "folds.csv"), "--out", str(tmp_path)]
    assert frontier.main(args) == 0
    text = (tmp_path / "frontier.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in text.splitlines()[4:]}
    # the fastest round counts: 1000 / 20 ms
    assert rows["base"][2] == "2" and rows["base"][7] == "50.0" and rows["base"][5] == "80.0"
    assert rows["base"][3] == "45.00 (2)" and rows["big"][2] == "1"
    assert rows["big"][3] == "48.00 (1)" and rows["big"][1] == "450x600"  # 45 + 3, one pair
    assert rows["slow"][3] == "44.00 (2)"
    assert rows["base"][4] == "46.00 (2)"  # flip: +1 over the same plain runs
    assert rows["base"][-1].startswith("yes") and rows["big"][-1].startswith("yes")
    assert not rows["slow"][-1].strip(" |")  # slower and less accurate than base
    assert (tmp_path / "frontier.png").is_file()
    # no speed results: nothing written
    (tmp_path / "frontier.md").unlink()
    assert frontier.main([str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "frontier.md").exists()


def test_committed_rows_are_kept_for_runs_not_on_disk_and_nothing_is_written_without_runs(
    table, tmp_path
):
    logs, out = tmp_path / "logs", tmp_path / "out"
    out.mkdir()
    # the committed record: two base runs and an ft360 run of earlier sessions
    make_run(tmp_path / "old", "base_0016E5_s42", {"plain": 40.0})
    make_run(tmp_path / "old", "base_0016E5_s7", {"plain": 41.0})
    make_run(tmp_path / "old", "ft360_0016E5_s42", {"plain": 45.0})
    table.write(table.collect(tmp_path / "old"), out)
    committed = out / "folds.csv"
    # this session: base s42 retrained (it replaces its row), a new change beside it
    make_run(logs, "base_0016E5_s42", {"plain": 42.0})
    make_run(logs, "kdft360_0016E5_s42", {"plain": 47.0})
    assert table.main([str(logs), "--out", str(out), "--keep", str(committed)]) == 0
    rows = {(r["change"], r["seed"]): r["miou_last"] for r in table.read_rows(committed)}
    assert rows == {("base", 42): 42.0, ("base", 7): 41.0, ("ft360", 42): 45.0,
                    ("kdft360", 42): 47.0}  # fmt: skip
    # kdft360 is paired with ft360 (the same fine-tune without the targets) and with the recipe
    (header, *body), _ = table.ranking(table.read_rows(committed))
    pairs = {(r[0], r[header.index("against")]): r[header.index("paired gain")] for r in body}
    assert pairs[("kdft360", "ft360")] == "+2.00" and pairs[("kdft360", "base")] == "+5.00"
    before = committed.read_bytes()
    assert table.main([str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert committed.read_bytes() == before


def test_per_class_gains_are_paired_against_the_changes_reference(table, tmp_path):
    """Where a change's gain comes from: per class, against the control REFERENCE names."""
    for fold, seed, v in [("0006R0", 42, 45.0), ("0016E5", 7, 50.0)]:
        for change, pole in [("base", 10.0), ("ft360", 12.0), ("kdft360", 15.0)]:
            make_run(tmp_path, f"{change}_{fold}_s{seed}", {"plain": v})
            plain = tmp_path / f"{change}_{fold}_s{seed}" / "eval" / "plain" / "eval.json"
            plain.write_text(json.dumps({"miou": v / 100, "iou": {"sky": 0.9, "pole": pole / 100}}))
    rows = table.collect(tmp_path)
    header, *body = table.class_table(rows)
    assert header == ["change", "against", "pairs", "sky", "pole"]
    got = {r[0]: r[1:] for r in body}
    assert got["kdft360"] == ["ft360", 2, "+0.00", "+3.00"]  # against ft360, not the recipe
    assert got["ft360"] == ["base", 2, "+0.00", "+2.00"]
    table.write(rows, tmp_path)  # the csv keeps the classes in the dataset's order, and reads back
    assert table.class_table(table.read_rows(tmp_path / "folds.csv"))[0] == header
