"""Realtime video segmentation: sources, pipeline, overlay, sinks."""
