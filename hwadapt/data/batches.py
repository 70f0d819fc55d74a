"""Mini-batches from an in-memory :class:`ImageSet`: normalisation and CIFAR augmentation."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from hwadapt.data.splits import ImageSet, Splits


def to_tensor(images: np.ndarray, splits: Splits) -> torch.Tensor:
    """uint8 NHWC -> normalised float NCHW."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(splits.mean).view(1, 3, 1, 1)
    std = torch.tensor(splits.std).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(images: np.ndarray, rng: np.random.Generator, *, flip: bool, pad: int) -> np.ndarray:
    """Standard CIFAR augmentation: a random crop of the zero-padded image, and a random
    horizontal flip where flips keep the label."""
    n, side = images.shape[0], images.shape[1]
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, n))
    rows = dy[:, None] + np.arange(side)[None, :]
    cols = dx[:, None] + np.arange(side)[None, :]
    if flip:
        mirrored = rng.random(n) < 0.5
        cols[mirrored] = cols[mirrored][:, ::-1]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def batches(data: ImageSet, splits: Splits, batch_size: int, *, rng: np.random.Generator | None = None,
            train: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of (input, label); shuffled and augmented when ``train`` (needs ``rng``)."""
    order = rng.permutation(len(data)) if train else np.arange(len(data))
    pad = max(1, splits.resolution // 8)
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        images = data.images[index]
        if train:
            images = augment(images, rng, flip=splits.flip, pad=pad)
        yield to_tensor(images, splits), torch.from_numpy(data.labels[index])
