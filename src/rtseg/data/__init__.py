"""Datasets (one module per on-disk layout), transforms and the datamodule."""

from rtseg.data.datamodule import SegDataModule

__all__ = ["SegDataModule"]
