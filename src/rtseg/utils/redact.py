"""Credentials never printed or stored: one function, ``redact``, hides a URL's password (user info)
and the values of secret-looking query parameters wherever a source string goes: log lines (a
logging filter on Hydra's handlers), one-line errors, realtime.json/csv, and the Hydra config copies
of a run folder (``.hydra/*.yaml``, rewritten by a Hydra callback right after Hydra writes them).

    rtsp://admin:s3cret@cam/ch1?token=T0KEN&fps=25  ->  rtsp://admin:***@cam/ch1?token=***&fps=25
    rtsp://admin:p@ss@cam/ch1                       ->  rtsp://admin:***@cam/ch1   (FFmpeg's split)
    source=rtsp\://admin\:pw@cam\:554/x            ->  source=rtsp\://admin\:***@cam\:554/x  (Hydra's escaping)
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

MASK = "***"

# a URL's start; its authority runs to the first '/', '?' or '#' (or a space or a quote), and its
# user info to the LAST '@' in that authority: FFmpeg's own split (av_url_split), so a password
# holding '@' (rtsp://admin:p@ss@cam/) is hidden whole
_SCHEME = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*\\?://")  # Hydra's override files: rtsp\://
_AUTHORITY_END = re.compile(r"[/?#\s'\"]")
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


def _userinfo(text: str) -> str:
    """Every URL's password (``user:***@``) or bare token (``***@``) replaced, parsing each URL."""
    out, pos = [], 0
    for m in _SCHEME.finditer(text):
        if m.start() < pos:  # inside a URL already handled
            continue
        start = m.end()
        end = _AUTHORITY_END.search(text, start)
        authority = text[start : end.start() if end else len(text)]
        at = authority.rfind("@")
        if at <= 0:
            continue
        # Hydra writes ':' as '\:' in its override files and multirun lines: the user keeps it
        user, sep, _ = authority[:at].partition(":")
        hidden = f"{user}:{MASK}" if sep else MASK
        out.append(text[pos:start] + hidden)
        pos = start + at
    return "".join(out) + text[pos:]


def redact(text: Any) -> str:
    """``text`` with every URL password and secret query value replaced by ``***``."""
    out = _userinfo(str(text))
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
