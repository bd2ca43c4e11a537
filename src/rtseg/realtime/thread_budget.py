"""The threads each CPU stage of the stream may use (decode, network, flow, encode), as realtime.json
records them.

Today they are chosen by rule, not by measurement: the network gets ``threads`` (null: torch's
count, one per usable core) and every other stage its library's default, all sharing the same
cores. Issue 34 measured what that costs (the filter's 8% alone was 18.5% of the stream on two
cores); the record says the rule so that a measured budget can replace it visibly.
"""

from __future__ import annotations

RULE = (
    "rule, not measured: network = threads (null: torch's count, one per usable core); decode = "
    "OpenCV's FFmpeg default (one per core); flow = OpenCV's pool (cv2.getNumThreads); encode = "
    "PyAV's default (thread_count 0: the encoder's own choice, libx264 about 1.5 per core); all "
    "share the same cores"
)


def thread_budget(network_threads: int, source, sinks) -> dict:
    """What each stage was given in this run, and the rule that chose it."""
    import cv2

    from rtseg.utils.machine import usable_cpus

    encode = next((s.encoder_threads for s in sinks if getattr(s, "encoder_threads", None)), None)
    return {
        "cores": usable_cpus(),
        "decode": getattr(source, "decode_threads", None),
        "network": int(network_threads),
        "flow": cv2.getNumThreads(),
        "encode": encode,
        "chosen_by": RULE,
    }
