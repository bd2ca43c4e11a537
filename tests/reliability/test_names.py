"""Names (issue 36): a bare shipped name that is also a file or folder here, ``zoo:NAME``, ``./NAME``;
``checkpoint=best`` written or defaulted; a source that is no video, camera, stream or image folder."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rtseg.checkpoints import zoo
from rtseg.checkpoints.reading import weights_identity
from rtseg.checkpoints.spec import choose_checkpoint
from rtseg.errors import CheckpointError


@pytest.fixture
def camvid_folder_here(tmp_path, monkeypatch):
    """A dataset folder named like the shipped model, in the working directory."""
    (tmp_path / "camvid" / "train").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    zoo._reported.clear()
    return tmp_path / "camvid"


def test_a_bare_name_is_the_shipped_model_and_says_the_folder_is_shadowed(
    camvid_folder_here, caplog
):
    with caplog.at_level(logging.WARNING, logger="rtseg.checkpoints.zoo"):
        choice = choose_checkpoint("camvid", "logs")
        choose_checkpoint("camvid", "logs")  # said once
    assert str(choice.path) == "camvid" and "shipped" in choice.reason
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "took the shipped model, not the folder" in said[0]
    assert "./camvid names the folder" in said[0] and "zoo:camvid" in said[0]


def test_zoo_prefix_and_dot_slash_name_each_one(camvid_folder_here, caplog):
    with caplog.at_level(logging.WARNING):
        assert str(choose_checkpoint("zoo:camvid", "logs").path) == "camvid"
    assert not caplog.records  # asked for by its full name: nothing to say
    with pytest.raises(CheckpointError, match=r"is a folder.*the shipped model is zoo:camvid"):
        choose_checkpoint("./camvid", "logs")
    with pytest.raises(CheckpointError, match=r"zoo:nope: no shipped model named 'nope'"):
        choose_checkpoint("zoo:nope", "logs")
    assert weights_identity("zoo:camvid")["sha256"] == zoo.card("camvid")["sha256"]


def test_a_file_named_like_the_model_is_reached_with_dot_slash(camvid_folder_here):
    (camvid_folder_here / "train").rmdir()
    camvid_folder_here.rmdir()
    Path("camvid").write_bytes(b"not a checkpoint")
    choice = choose_checkpoint("./camvid", "logs")
    assert choice.path == Path("camvid").absolute()  # not re-read as the shipped name
    assert weights_identity(choice.path)["source"] == str(Path("camvid").resolve())


def test_the_api_takes_the_same_rule(camvid_folder_here):
    import rtseg

    with pytest.raises(CheckpointError, match="the shipped model is zoo:camvid"):
        rtseg.load(Path("camvid"), backend="eager", threads=1)
    model = rtseg.load("camvid", backend="eager", threads=1)
    assert model.meta["num_classes"] == zoo.card("camvid")["meta"]["num_classes"]


@pytest.mark.parametrize("config", ["realtime", "eval", "export", "benchmark"])
def test_checkpoint_best_is_the_same_written_or_defaulted(config, tmp_path):
    """With no trained run, ``best`` falls back where the command's default does (realtime: the
    shipped camvid) and refuses where it does not, whether ``checkpoint=best`` is written or not."""
    from rtseg.utils.cli import checkpoint_keys_kept
    from rtseg.utils.config import compose_config

    def outcome(argv):
        cfg = compose_config(config, checkpoint_keys_kept(config, argv))
        try:
            return str(choose_checkpoint(cfg.checkpoint, tmp_path / "logs").path)
        except CheckpointError as e:
            return f"refused: {str(e).split(':')[0]}"

    defaulted = outcome(["checkpoint.path=best"] if config == "benchmark" else [])
    assert outcome(["checkpoint=best"]) == defaulted
    if config == "realtime":
        assert defaulted == "camvid"
    else:
        assert defaulted.startswith("refused: no trained run")
    assert outcome(["checkpoint=best", "checkpoint.fallback=null"]).startswith("refused")


def test_a_text_file_is_no_video_source(tmp_path):
    """notes.txt was played through FFmpeg's tty demuxer as a 42-frame video, reported a success."""
    from rtseg.errors import SourceError
    from rtseg.realtime.open_source import open_source

    from .conftest import run_cli, write_video

    notes = tmp_path / "notes.txt"
    notes.write_text("meeting notes\n" * 200)
    subtitles = tmp_path / "clip.srt"
    subtitles.write_text("1\n00:00:01,000 --> 00:00:02,000\nhello\n")
    with pytest.raises(SourceError, match="not a video .FFmpeg reads it as srt with no video"):
        open_source(str(subtitles))
    video = open_source(str(write_video(tmp_path / "clip.mp4", frames=3)), live=False)
    video.close()

    proc = run_cli(
        "rtseg.realtime.cli",
        f"source={notes}",
        "checkpoint=camvid",
        f"paths.log_dir={tmp_path / 'logs'}",
        "progress.enabled=false",
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: source={notes}: not a video (FFmpeg reads it as text)")
