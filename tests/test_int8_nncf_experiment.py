"""experiments/int8_nncf/compare.py end to end on a tiny network and two images (nncf is slow to import)."""

from __future__ import annotations

import csv

import pytest

from rtseg.utils.paths import REPO_ROOT
from tests.support import load_script


@pytest.mark.slow
def test_compare_quick_writes_every_variant(tmp_path):
    pytest.importorskip("nncf")
    pytest.importorskip("openvino")
    compare = load_script(REPO_ROOT / "experiments" / "int8_nncf" / "compare.py")
    compare.main(["--quick", "--threads", "1", "--out", str(tmp_path)])
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [r["variant"] for r in rows] == ["fp32", "qdq-int8", "nncf-int8", "nncf-ac"]
    assert all(float(r["median_ms"]) > 0 and r["val_miou"] != "" for r in rows)
    assert float(rows[0]["agreement_pct"]) == pytest.approx(100.0, abs=0.1)
    assert (tmp_path / "results.md").is_file() and (tmp_path / "run.json").is_file()
