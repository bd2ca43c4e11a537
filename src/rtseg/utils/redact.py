"""Credentials never printed or stored: one function, ``redact``, hides a URL's password (user info)
and the values of secret-looking query parameters wherever a source string goes: log lines (a
logging filter on Hydra's handlers), one-line errors, realtime.json/csv, and the Hydra config copies
of a run folder (``.hydra/*.yaml``, rewritten by a Hydra callback right after Hydra writes them).

    rtsp://admin:s3cret@cam/ch1?token=T0KEN&fps=25  ->  rtsp://admin:***@cam/ch1?token=***&fps=25
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

MASK = "***"

# scheme://user:password@  (the user stays, the password goes) or scheme://token@ (all of it goes)
_USERINFO = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^\s/@:'\"]*)(?::(?P<pw>[^\s/@'\"]*))?@"
)
# ?user=..&pass=..&password=..&token=..&key=..&api_key=..&secret=..&sig=.. (values hidden)
_SECRET_NAMES = (
    "user|username|login|pass|passwd|password|pwd|passphrase|secret|token|key|apikey|auth|"
    "authorization|signature|sig|credential|credentials|session|sessionid|sid"
)
_QUERY = re.compile(
    rf"(?i)(?P<name>[?&;](?:[\w.-]*[_.-])?(?:{_SECRET_NAMES})=)"
    # the value: up to the next parameter, a quote or a space (a colon ending a sentence stays)
    rf"(?P<value>(?:[^&#\s'\":]|:(?![\s'\"]|$))*)"
)


def redact(text: Any) -> str:
    """``text`` with every URL password and secret query value replaced by ``***``."""

    def userinfo(m: re.Match) -> str:
        if m.group("pw") is None:  # a bare token before @ (https://TOKEN@host)
            return f"{m.group('scheme')}{MASK}@" if m.group("user") else m.group(0)
        return f"{m.group('scheme')}{m.group('user')}:{MASK}@"

    out = _USERINFO.sub(userinfo, str(text))
    return _QUERY.sub(lambda m: m.group("name") + (MASK if m.group("value") else ""), out)


def redact_file(path: Path) -> bool:
    """Rewrite a text file with its secrets redacted (atomically); True when anything changed."""
    from rtseg.utils.paths import write_atomic

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return False
    clean = redact(text)
    if clean != text:
        write_atomic(path, clean)
    return clean != text


class RedactFilter(logging.Filter):
    """A logging filter (Hydra's ``job_logging``/``hydra_logging`` handlers): messages redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class RedactRunFiles(Callback):
    """Hydra writes the config, its own config and the overrides of every job to ``.hydra/`` before
    the task starts (and a sweep's ``multirun.yaml``): redacted right after, before any task code."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        hc = config.hydra
        if hc.output_subdir is not None:
            for path in sorted((Path(hc.runtime.output_dir) / hc.output_subdir).glob("*.yaml")):
                redact_file(path)
        if hc.mode is not None and str(hc.mode).endswith("MULTIRUN"):
            redact_file(Path(hc.sweep.dir) / "multirun.yaml")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        redact_file(Path(config.hydra.sweep.dir) / "multirun.yaml")
