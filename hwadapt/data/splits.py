"""Train / holdout / test splits of a dataset named by a ``--data`` spec.

The holdout is carved from the training images (seeded, stratified): NetAdapt picks
its proposals on it. The test split is only ever used for reported accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from sklearn.model_selection import train_test_split

from hwadapt.data.sources import DataError, RawData, data_identity, read_source

HOLDOUT_FRACTION = 0.1


@dataclass(frozen=True)
class ImageSet:
    """Images (uint8, N x H x W x 3) and integer labels."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, count: int, seed: int = 0) -> ImageSet:
        """A seeded, class-stratified subset of ``count`` images (all of them if fewer)."""
        if count >= len(self):
            return self
        keep, _ = _stratified(self.labels, count, seed)
        return ImageSet(self.images[keep], self.labels[keep])


@dataclass(frozen=True)
class Splits:
    name: str
    classes: tuple[str, ...]
    train: ImageSet
    holdout: ImageSet
    test: ImageSet
    flip: bool  # whether horizontal flips preserve the label (not for digits)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str = ""  # the --data spec with an absolute path: what resumable runs record


    @property
    def resolution(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _stratified(labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified sample of ``count`` labels, and of the rest."""
    index = np.arange(len(labels))
    classes = len(np.unique(labels))
    stratified = np.bincount(labels).min() >= 2 and min(count, len(labels) - count) >= classes
    stratify = labels if stratified else None
    first, rest = train_test_split(index, train_size=count, random_state=seed, stratify=stratify)
    return np.sort(first), np.sort(rest)


def _carve(images: np.ndarray, labels: np.ndarray, fraction: float, seed: int
           ) -> tuple[ImageSet, ImageSet]:
    """Split off ``fraction`` of the images, stratified by class."""
    count = max(1, int(round(len(labels) * fraction)))
    if count >= len(labels):
        raise DataError(f"too few images ({len(labels)}) to carve a {fraction:.0%} split")
    carved, kept = _stratified(labels, count, seed)
    return ImageSet(images[kept], labels[kept]), ImageSet(images[carved], labels[carved])


def _channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    sample = images[:: max(1, len(images) // 5000)].astype(np.float32) / 255.0
    mean = sample.mean(axis=(0, 1, 2))
    std = np.maximum(sample.std(axis=(0, 1, 2)), 1e-3)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def make_splits(raw: RawData, *, seed: int = 0, holdout_fraction: float = HOLDOUT_FRACTION) -> Splits:
    """Carve the test split (when the source has none, with a fixed seed so it never moves)
    and the seeded holdout from the training images."""
    if raw.test is None:
        train_pool, test = _carve(*raw.train, 0.2, seed=0)
    else:
        train_pool, test = ImageSet(*raw.train), ImageSet(*raw.test)
    train, holdout = _carve(train_pool.images, train_pool.labels, holdout_fraction, seed)
    mean, std = _channel_stats(train.images)
    return Splits(raw.name, raw.classes, train, holdout, test, raw.flip, mean, std)


def load_dataset(spec: str, resolution: int, *, seed: int = 0,
                 holdout_fraction: float = HOLDOUT_FRACTION) -> Splits:
    """The splits of ``spec`` (``digits``, ``cifar10:PATH``, ``imagefolder:PATH``) at ``resolution``."""
    if not 0 < holdout_fraction < 1:
        raise DataError(f"holdout fraction must be in (0, 1), got {holdout_fraction}")
    splits = make_splits(read_source(spec, resolution), seed=seed, holdout_fraction=holdout_fraction)
    return replace(splits, source=data_identity(spec))
