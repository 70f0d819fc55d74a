"""Datasets: the bundled digits, CIFAR-10 JPEG folders/tarballs, generic image folders.

Images are kept in memory as uint8 NHWC arrays at the network resolution; batches are
normalised and augmented on the fly (:mod:`hwadapt.data.batches`).
"""
from hwadapt.data.batches import augment, batches, to_tensor
from hwadapt.data.splits import DataError, ImageSet, Splits, load_dataset

__all__ = ["DataError", "ImageSet", "Splits", "augment", "batches", "load_dataset", "to_tensor"]
