"""A smaller CIFAR-10 JPEG archive, same layout, to carry to a machine without the data:
the first N training and M test images of each class, in the archive's order.

    python benchmarks/gpu_subset.py ../shared/data/cifar10-jpeg.tar.gz benchmarks/gpu_carry/cifar10-subset.tar.gz
"""
from __future__ import annotations

import argparse
import tarfile
from collections import Counter
from pathlib import Path, PurePosixPath


def subset(source: Path, target: Path, per_class: dict[str, int]) -> Counter:
    """Copy the first ``per_class[split]`` images of each class of each split."""
    kept: Counter = Counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tarfile.open(source, "r:gz") as src, tarfile.open(tmp, "w:gz") as dst:
        for member in src:
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) < 3 or parts[-3] not in per_class:
                continue
            key = (parts[-3], parts[-2])
            if kept[key] < per_class[parts[-3]]:
                dst.addfile(member, src.extractfile(member))
                kept[key] += 1
    tmp.replace(target)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--train-per-class", type=int, default=2500)
    parser.add_argument("--test-per-class", type=int, default=200)
    args = parser.parse_args()
    kept = subset(args.source, args.target, {"train": args.train_per_class, "test": args.test_per_class})
    print(f"{args.target}: {sum(kept.values())} images in {len(kept)} class folders, "
          f"{args.target.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
