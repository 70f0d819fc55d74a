"""Datasets: digits, image folders and archives read in place, splits, augmentation, bad input."""
import tarfile

import numpy as np
import pytest
from PIL import Image

from hwadapt.data import DataError, augment, batches, load_dataset
from hwadapt.data import sources


def _write_folder(root, splits=("train", "test"), classes=("cat", "dog"), per_class=6, size=12):
    rng = np.random.default_rng(0)
    for split in splits:
        for c, name in enumerate(classes):
            folder = root / split / name if split else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = np.full((size, size, 3), 40 + 180 * c // max(1, len(classes) - 1), np.uint8) + rng.integers(0, 20, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.jpg")


@pytest.fixture(autouse=True)
def _fresh_memory_cache(monkeypatch):
    monkeypatch.setattr(sources, "_MEMORY", {})
    monkeypatch.delenv(sources.CACHE_ENV, raising=False)


def test_digits_are_upsampled_and_split_without_overlap():
    splits = load_dataset("digits", 16, seed=3)
    assert splits.train.images.shape[1:] == (16, 16, 3) and splits.train.images.dtype == np.uint8
    assert splits.num_classes == 10 and not splits.flip
    assert len(splits.train) + len(splits.holdout) + len(splits.test) == 1797
    rows = {split: {img.tobytes() for img in getattr(splits, split).images} for split in ("train", "holdout", "test")}
    assert not rows["holdout"] & rows["test"]
    other = load_dataset("digits", 16, seed=4)
    assert np.array_equal(other.test.labels, splits.test.labels)  # the test split never moves
    assert not np.array_equal(other.holdout.labels, splits.holdout.labels)


@pytest.mark.parametrize("archive", [False, True])
def test_folder_and_tarball_give_the_same_images(tmp_path, archive):
    _write_folder(tmp_path / "data")
    source = tmp_path / "data"
    if archive:
        source = tmp_path / "data.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(tmp_path / "data", arcname="cifar")
    splits = load_dataset(f"cifar10:{source}", 8, holdout_fraction=0.25)
    assert splits.classes == ("cat", "dog")
    assert splits.train.images.shape[1:] == (8, 8, 3)
    assert len(splits.test) == 12 and len(splits.train) + len(splits.holdout) == 12
    dog = splits.test.images[splits.test.labels == 1].mean()
    cat = splits.test.images[splits.test.labels == 0].mean()
    assert dog > cat + 100  # labels follow the class folders


def test_imagefolder_without_splits_carves_a_test_split(tmp_path):
    _write_folder(tmp_path, splits=(None,), classes=("a", "b", "c"), per_class=10)
    splits = load_dataset(f"imagefolder:{tmp_path}", 12)
    assert splits.classes == ("a", "b", "c")
    assert len(splits.test) == 6 and len(splits.train) + len(splits.holdout) == 24


def test_disk_cache_is_npy_and_reused(tmp_path, monkeypatch):
    _write_folder(tmp_path / "data")
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    first = load_dataset(f"cifar10:{tmp_path / 'data'}", 8)
    files = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert files == ["meta.json", "test_images.npy", "test_labels.npy", "train_images.npy", "train_labels.npy"]
    monkeypatch.setattr(sources, "_MEMORY", {})
    monkeypatch.setattr(sources, "read_images", lambda *a: pytest.fail("decoded again"))
    again = load_dataset(f"cifar10:{tmp_path / 'data'}", 8)
    assert np.array_equal(first.test.images, again.test.images)


def test_bad_datasets_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no dataset at"):
        load_dataset(f"cifar10:{tmp_path / 'missing'}", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no training images"):
        load_dataset(f"cifar10:{tmp_path / 'empty'}", 8)
    _write_folder(tmp_path / "holes")
    (tmp_path / "holes" / "train" / "bird").mkdir()
    with pytest.raises(DataError, match="'bird' has no images"):
        load_dataset(f"cifar10:{tmp_path / 'holes'}", 8)
    with pytest.raises(DataError, match="unknown --data"):
        load_dataset("mnist", 8)
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(DataError, match="cannot read archive"):
        load_dataset(f"cifar10:{tmp_path / 'junk.tar.gz'}", 8)


def test_augmentation_crops_and_flips():
    rng = np.random.default_rng(0)
    images = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    out = augment(images, rng, flip=False, pad=0)
    assert np.array_equal(out, images)
    flipped = [augment(images[:1], np.random.default_rng(s), flip=True, pad=0) for s in range(20)]
    assert any(np.array_equal(f[0], images[0, :, ::-1]) for f in flipped)
    shifted = augment(images, rng, flip=False, pad=2)
    assert shifted.shape == images.shape


def test_batches_are_normalised_and_cover_the_split():
    splits = load_dataset("digits", 8)
    seen = 0
    for x, y in batches(splits.test, splits, 100):
        assert x.shape[1:] == (3, 8, 8)
        seen += len(y)
    assert seen == len(splits.test)
    x, _ = next(batches(splits.train, splits, len(splits.train)))
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.1


def test_a_run_given_its_data_by_relative_or_absolute_path_is_the_same_run(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from hwadapt.cli.main import app

    _write_folder(tmp_path / "images")
    _write_folder(tmp_path / "other", per_class=7)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    command = ["train", "--family", "tiny", "--resolution", "16", "--epochs", "1", "--out", str(tmp_path / "run")]
    first = runner.invoke(app, [*command, "--data", "imagefolder:images"])
    again = runner.invoke(app, [*command, "--data", f"imagefolder:{tmp_path / 'images'}"])
    other = runner.invoke(app, [*command, "--data", "imagefolder:other"])
    assert first.exit_code == 0 and again.exit_code == 0, (first.output, again.output)
    assert other.exit_code != 0 and "different training run" in other.output
