"""Running trained networks: backends by runtime, export and int8, ``auto``, frame processing, model specs.

The layer below both ``rtseg.bench`` (measures) and ``rtseg.realtime`` (streams), so what the
benchmark times is what realtime runs.
"""
