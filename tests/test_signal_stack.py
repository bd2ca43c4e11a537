"""keep_signal_stack puts the calling thread's alternate signal stack back after native code changed it."""

from __future__ import annotations

import ctypes
import sys

import pytest

from rtseg.utils.signal_stack import keep_signal_stack, set_signal_stack, signal_stack

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack: Linux")


def test_a_stack_swapped_inside_the_block_is_put_back():
    before = signal_stack()
    other = ctypes.create_string_buffer(64 * 1024)
    with keep_signal_stack():
        assert set_signal_stack((ctypes.addressof(other), 0, len(other)))
        assert signal_stack() == (ctypes.addressof(other), 0, len(other))
    assert signal_stack() == before
