"""Reading a ``--data`` source into uint8 arrays at the network resolution.

Folders and ``.tar.gz`` archives are read in place (an archive is streamed once, never
unpacked); JPEGs are decoded once per process and kept in memory. Setting
``HWADAPT_CACHE_DIR`` also keeps the decoded arrays there as ``.npy`` files.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hwadapt.errors import HwadaptError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SPLIT_NAMES = ("train", "test")
CACHE_ENV = "HWADAPT_CACHE_DIR"

Arrays = tuple[np.ndarray, np.ndarray]


class DataError(HwadaptError):
    """A dataset that cannot be read: missing path, empty folder or class, bad spec."""


@dataclass(frozen=True)
class RawData:
    name: str
    classes: tuple[str, ...]
    train: Arrays
    test: Arrays | None  # None: the source has no test split; one is carved
    flip: bool


_MEMORY: dict[tuple, RawData] = {}


def read_source(spec: str, resolution: int) -> RawData:
    """Parse ``spec`` and read it (from memory or the cache dir when seen before)."""
    kind, _, path = spec.partition(":")
    if kind == "digits" and not path:
        return _remember(("digits", resolution), lambda: read_digits(resolution))
    if kind in ("cifar10", "imagefolder") and path:
        source = Path(path).expanduser()
        if not source.exists():
            raise DataError(f"no dataset at {source}")
        stat = source.stat()
        key = (kind, str(source.resolve()), stat.st_mtime_ns, stat.st_size, resolution)
        return _remember(key, lambda: read_images(source, resolution, kind))
    raise DataError(f"unknown --data {spec!r}; use digits, cifar10:PATH or imagefolder:PATH")


def data_identity(spec: str) -> str:
    """``spec`` with its path made absolute: what a resumable run records as its data, so
    that the same folder given relative or absolute is the same run."""
    kind, _, path = spec.partition(":")
    return f"{kind}:{os.path.abspath(Path(path).expanduser())}" if path else spec


def _remember(key: tuple, read: Callable[[], RawData]) -> RawData:
    if key not in _MEMORY:
        cache = os.environ.get(CACHE_ENV)
        _MEMORY[key] = _disk_cached(Path(cache), key, read) if cache else read()
    return _MEMORY[key]


# -- digits ---------------------------------------------------------------------
def read_digits(resolution: int) -> RawData:
    """scikit-learn's bundled 8x8 digits, upsampled bilinearly to ``resolution``, grey as RGB."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    images = np.stack([_resize(Image.fromarray(img, mode="L").convert("RGB"), resolution)
                       for img in small])
    labels = digits.target.astype(np.int64)
    return RawData("digits", tuple(str(n) for n in digits.target_names), (images, labels), None, flip=False)


# -- image folders / archives ---------------------------------------------------
def _resize(image: Image.Image, resolution: int) -> np.ndarray:
    if image.size != (resolution, resolution):
        image = image.resize((resolution, resolution), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _entries(source: Path) -> Iterator[tuple[tuple[str, ...], bool, Callable[[], bytes] | None]]:
    """(relative path parts, is_dir, bytes reader) for everything under ``source``."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            yield path.relative_to(source).parts, path.is_dir(), path.read_bytes
        return
    try:
        with tarfile.open(source, "r:*") as archive:
            for member in archive:
                parts = tuple(p for p in member.name.split("/") if p not in ("", "."))
                if member.isdir():
                    yield parts, True, None
                elif member.isfile():
                    data = archive.extractfile(member).read()
                    yield parts, False, lambda data=data: data
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"cannot read archive {source}: {exc}") from exc


def _locate(folder: tuple[str, ...], split_layout: bool) -> tuple[str, str] | None:
    """(split, class) when ``folder`` is a class folder (``[...]/split/class`` or ``class``)."""
    if not split_layout:
        return ("train", folder[0]) if len(folder) == 1 else None
    for i, part in enumerate(folder):
        if part in SPLIT_NAMES and len(folder) == i + 2:
            return part, folder[i + 1]
    return None


def read_images(source: Path, resolution: int, kind: str) -> RawData:
    """Decode every image under ``source`` (``[split/]class/file``)."""
    split_layout = kind == "cifar10" or _has_split_layout(source)
    images: dict[str, list[np.ndarray]] = defaultdict(list)
    labels: dict[str, list[str]] = defaultdict(list)
    folders: dict[str, set[str]] = defaultdict(set)
    for parts, is_dir, read in _entries(source):
        where = _locate(parts if is_dir else parts[:-1], split_layout)
        if where is None:
            continue
        split, cls = where
        folders[split].add(cls)
        if not is_dir and parts[-1].lower().endswith(IMAGE_SUFFIXES):
            images[split].append(_decode(read(), parts, resolution))
            labels[split].append(cls)
    return _assemble(source, kind, split_layout, images, labels, folders)


def _has_split_layout(source: Path) -> bool:
    if source.is_dir():
        return (source / "train").is_dir()
    return any(_locate(parts if is_dir else parts[:-1], True) for parts, is_dir, _ in _first_entries(source))


def _first_entries(source: Path, count: int = 50):
    for n, entry in enumerate(_entries(source)):
        if n >= count:
            return
        yield entry


def _decode(data: bytes, parts: tuple[str, ...], resolution: int) -> np.ndarray:
    try:
        return _resize(Image.open(io.BytesIO(data)).convert("RGB"), resolution)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot decode image {'/'.join(parts)}: {exc}") from exc


def _assemble(source: Path, kind: str, split_layout: bool, images, labels, folders) -> RawData:
    layout = "train/<class>/*.jpg and test/<class>/*.jpg" if split_layout else "<class>/*.jpg"
    if not images.get("train"):
        raise DataError(f"no training images in {source} (expected {layout})")
    if split_layout and not images.get("test"):
        raise DataError(f"no test images in {source} (expected {layout})")
    classes = tuple(sorted(folders["train"]))
    for split in ("train", "test") if split_layout else ("train",):
        found = set(labels[split])
        empty = sorted(folders[split] - found) or sorted(set(classes) - found)
        if empty:
            raise DataError(f"class {empty[0]!r} has no images in {split}/ of {source}")
    if split_layout and set(folders["test"]) != set(classes):
        raise DataError(f"train and test classes differ in {source}")
    index = {c: i for i, c in enumerate(classes)}

    def arrays(split: str) -> Arrays:
        return np.stack(images[split]), np.array([index[c] for c in labels[split]], np.int64)

    test = arrays("test") if split_layout else None
    return RawData(f"{kind}:{source.name}", classes, arrays("train"), test, flip=True)


# -- optional on-disk cache (.npy, never pickle) ---------------------------------
def _disk_cached(cache: Path, key: tuple, read: Callable[[], RawData]) -> RawData:
    folder = cache / "data" / hashlib.sha256(repr(key).encode()).hexdigest()[:20]
    meta_file = folder / "meta.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        load = lambda name: np.load(folder / f"{name}.npy", allow_pickle=False)  # noqa: E731
        test = (load("test_images"), load("test_labels")) if meta["has_test"] else None
        return RawData(meta["name"], tuple(meta["classes"]), (load("train_images"), load("train_labels")),
                       test, meta["flip"])
    raw = read()
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train_images": raw.train[0], "train_labels": raw.train[1]}
    if raw.test is not None:
        arrays |= {"test_images": raw.test[0], "test_labels": raw.test[1]}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array, allow_pickle=False)
    meta = {"name": raw.name, "classes": list(raw.classes), "flip": raw.flip, "has_test": raw.test is not None}
    meta_file.write_text(json.dumps(meta))
    return raw
