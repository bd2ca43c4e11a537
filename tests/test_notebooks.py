"""notebooks/*.ipynb run top to bottom (nbclient) on a tiny run trained here, so they never rot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from rtseg.training.train import train
from rtseg.utils.config import compose_config
from rtseg.utils.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
TINY = [
    "data=synthetic",
    "model=baseline",
    "model.width=8",
    "data.input_size=[64,80]",
    "data.lengths.train=16",
    "data.lengths.val=8",
    "data.lengths.test=8",
    "data.batch_size=8",
    "trainer.max_epochs=2",
    "logger=csv",
    "callbacks.progress_bar=null",
    "callbacks.model_cost.latency_min_runs=2",
    "callbacks.model_cost.latency_min_seconds=0",
    "trainer.enable_model_summary=false",
    "threads=1",
]


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    """A log folder holding one finished 2-epoch baseline run, laid out like rtseg-train's."""
    root = tmp_path_factory.mktemp("nb_logs")
    cfg = compose_config(
        "train",
        [*TINY, f"paths.log_dir={root}", f"paths.output_dir={root / 'train/runs/tiny'}"],
    )
    train(cfg)
    return root


def test_notebooks_are_stripped():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, (
                    f"{path.name}: outputs must be stripped in git"
                )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, log_dir, monkeypatch, tmp_path):
    assert {"results", "predictions"} <= {p.stem for p in NOTEBOOKS}
    monkeypatch.setenv("RTSEG_LOG_DIR", str(log_dir))
    monkeypatch.setenv("RTSEG_NUM_IMAGES", "2")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
    monkeypatch.delenv("RTSEG_CKPT", raising=False)
    nb = nbformat.read(path, as_version=4)
    # kernel "python3" is ipykernel in this interpreter (jupyter_client maps argv "python" to it)
    NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} drew no figure"
    text = json.dumps(
        [o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs]
    )
    if path.stem == "results":
        assert "tiny" in text and (log_dir / "leaderboard.png").is_file()
        assert len(images) >= 3, "expected the Pareto plot, per-class bars and learning curves"
    else:
        assert "val mIoU" in text and "synthetic: 8 val images" in text


def test_predictions_asks_for_a_checkpoint_when_runs_span_datasets(log_dir, monkeypatch, tmp_path):
    """Issue 37: runs of two datasets under the log folder: the notebook's own one-message stop
    naming RTSEG_CKPT and each dataset's best checkpoint, not a MixedDatasets traceback."""
    logs = tmp_path / "logs"
    shutil.copytree(log_dir / "train", logs / "train")
    other = logs / "train" / "runs" / "other"
    shutil.copytree(logs / "train" / "runs" / "tiny", other)
    record = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**record, "dataset": "camvid"}))
    monkeypatch.setenv("RTSEG_LOG_DIR", str(logs))
    monkeypatch.delenv("RTSEG_CKPT", raising=False)
    nb = nbformat.read(REPO_ROOT / "notebooks" / "predictions.ipynb", as_version=4)
    nb.cells = nb.cells[:2]  # up to the cell choosing the checkpoint
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert [e.ename for e in errors] == ["SystemExit"], errors
    assert "set RTSEG_CKPT" in errors[0].evalue
    assert "# camvid" in errors[0].evalue and "# synthetic" in errors[0].evalue
