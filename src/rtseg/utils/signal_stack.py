"""The calling thread's alternate signal stack, kept as it was around native code that changes it.

OpenVINO's CPU plugin installs an alternate signal stack (``sigaltstack``) of its own when it
compiles a model and puts back the one it found when that model is destroyed. With two compiled
models whose lives do not nest (A compiled, B compiled, A destroyed, B destroyed) the thread is
left pointing at A's stack after A freed it. Python runs its signal handlers with ``SA_ONSTACK``, so
the next handled signal (Ctrl-C in rtseg-realtime; SIGCHLD once torch's DataLoader has installed
its handler, i.e. every subprocess that ends) writes its frame into freed memory: heap corruption,
then a segfault far away (issue 24: ``make test`` died in ``_int_malloc`` 300 tests later).
``keep_signal_stack`` wraps every such call and puts the thread's own stack back.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SS_ONSTACK, SS_DISABLE = 1, 2


class _StackT(ctypes.Structure):  # struct stack_t (Linux: the same layout on x86-64 and aarch64)
    _fields_ = [
        ("ss_sp", ctypes.c_void_p),
        ("ss_flags", ctypes.c_int),
        ("ss_size", ctypes.c_size_t),
    ]


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def signal_stack() -> tuple[int, int, int] | None:
    """(address, flags, size) of the calling thread's alternate signal stack; None off Linux."""
    if _libc is None:
        return None
    st = _StackT()
    if _libc.sigaltstack(None, ctypes.byref(st)) != 0:
        return None
    return (st.ss_sp or 0, st.ss_flags & ~SS_ONSTACK, st.ss_size)


def set_signal_stack(stack: tuple[int, int, int]) -> bool:
    """Install ``stack`` (as ``signal_stack`` returned it) for the calling thread; False if refused."""
    if _libc is None:
        return False
    sp, flags, size = stack
    st = _StackT(ctypes.c_void_p(sp or None), flags, size)
    return _libc.sigaltstack(ctypes.byref(st), None) == 0


@contextmanager
def keep_signal_stack() -> Iterator[None]:
    """Run a block of native code and leave the calling thread's signal stack as it was before."""
    before = signal_stack()
    try:
        yield
    finally:
        if before is not None and signal_stack() != before:
            set_signal_stack(before)
