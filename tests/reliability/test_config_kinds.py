"""Config values of the wrong kind are refused before the run with the valid form (issue 36:
trainer.max_epochs=1.5 was Lightning's AssertionError, threads=1.5 was accepted, size=[1,1] in
realtime a cv2 traceback from the flow filter, tta={flipp: true} in the API silently no TTA and
checked only after the model was opened)."""

from __future__ import annotations

import pytest

from rtseg.errors import RtsegError
from rtseg.models.tta import TTA
from rtseg.utils.cli import check_overrides
from rtseg.utils.ranges import range_error


@pytest.mark.parametrize(
    ("config", "override", "said"),
    [
        ("train", "trainer.max_epochs=1.5", "expected a whole number: >= 1 or -1 or null, got 1.5"),
        ("realtime", "threads=1.5", "expected a whole number: >= 1 and <= cpus or null"),
        ("realtime", "size=[1,1]", "expected >= 16 or null, got 1 (in [1, 1])"),
        ("train", "data.batch_size=2.5", "expected a whole number: >= 1, got 2.5"),
    ],
)
def test_a_value_of_the_wrong_kind_is_one_line_before_the_run(config, override, said):
    with pytest.raises(RtsegError, match=r".*") as e:
        check_overrides(config, [override])
    assert str(e.value) == f"{override}: {said}" or said in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_whole_numbers_and_null_still_pass():
    assert range_error("trainer.max_epochs", 3) is None
    assert range_error("trainer.max_epochs", -1) is None
    assert range_error("threads", None) is None
    assert range_error("size", [360, 480]) is None


def test_an_unknown_tta_key_names_the_valid_ones():
    with pytest.raises(RtsegError, match=r"unknown key flipp: the keys are flip .* and scales"):
        TTA.parse({"flipp": True})
    assert TTA.parse({"flip": True, "scales": [1, 1.5]}).passes == 4


def test_the_api_checks_tta_before_opening_the_model(monkeypatch):
    import rtseg.infer.open

    def no_model(*a, **k):
        raise AssertionError("the model was opened before tta= was checked")

    monkeypatch.setattr(rtseg.infer.open, "open_model", no_model)
    with pytest.raises(RtsegError, match=r"unknown key flipp"):
        rtseg.load("camvid", tta={"flipp": True})
