"""Index and defect coverage of a folder of many real-sized images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import record, timed


def write_many_images(root: Path, count: int, defect_share: float = 0.2) -> int:
    """``count`` PNG images of many sizes and aspects in two categories (MVTec layout), ``defect_share`` of
    them defective with a mask at a random place, borders included. Returns the number of masks."""
    from PIL import Image

    rng = np.random.default_rng(0)
    masks = 0
    for i in range(count):
        category = ("wide", "tall")[i % 2]
        width, height = int(rng.integers(160, 480)), int(rng.integers(160, 480))
        if category == "tall":
            width, height = min(width, height), max(width, height) * 2
        defect = i >= count * (1 - defect_share)
        split, label = ("test", "bad") if defect else (("train", "good") if i % 10 > 1 else ("test", "good"))
        folder = root / category / split / label
        folder.mkdir(parents=True, exist_ok=True)
        shade = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
        Image.fromarray(shade).save(folder / f"{i:05d}.png", compress_level=1)
        if defect:
            mask = np.zeros((height, width), np.uint8)
            top, left = int(rng.integers(0, height - 8)), int(rng.integers(0, width - 8))
            mask[top : top + 8, left : left + int(rng.integers(8, 40))] = 255
            gt = root / category / "ground_truth" / label
            gt.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(gt / f"{i:05d}_mask.png", compress_level=1)
            masks += 1
    return masks


def bench_index(args, work: Path):
    """Indexing (every header read) and the defect-coverage check (every mask decoded and transformed) of
    10,000 images of many sizes: no image is decoded."""
    from tailedcore.data.coverage import defect_coverage
    from tailedcore.data.images import Geometry
    from tailedcore.data.index import build_mvtec_index

    count = 10_000 * args.scale
    root = work / "many"
    masks = write_many_images(root, count)
    index_seconds, index = timed(build_mvtec_index, root, ["tall", "wide"])
    geometry = Geometry(mode="crop", resize=256, crop=224)
    coverage_seconds, coverage = timed(defect_coverage, index, geometry, "exact_one")
    total = index_seconds + coverage_seconds
    sizes = index[["width", "height"]].drop_duplicates().shape[0]
    record("index", "index seconds", index_seconds, detail=f"{len(index)} images, {sizes} distinct sizes")
    record(
        "index",
        "coverage seconds",
        coverage_seconds,
        detail=f"{masks} masks; {int(coverage['emptied'].sum())} emptied by crop 224",
    )
    record("index", "index + coverage seconds", total, "<= 30", total <= 30, detail=f"{args.threads} threads")
    record(
        "index",
        "index seconds per 1,000 images",
        1000 * index_seconds / len(index),
        detail="headers, every body checked for truncation (PNG verify), every mask decoded and checked",
    )
    # the truncation test alone, per 1,000 files, against a full decode of the same files
    from PIL import Image

    from tailedcore.data.images import body_problem

    paths = index["image_path"].tolist()[:1000]
    jpegs = []
    for number, path in enumerate(paths):
        with Image.open(path) as image:
            jpegs.append(work / f"jpeg{number}.jpg")
            image.convert("RGB").save(jpegs[-1], quality=90)
    for kind, files in (("PNG", paths), ("JPEG", jpegs)):
        test_seconds, _ = timed(lambda files=files: [body_problem(f) for f in files])
        decode_seconds, _ = timed(lambda files=files: [Image.open(f).load() for f in files])
        record(
            "index",
            f"{kind} truncation test, seconds per 1,000 images",
            test_seconds * 1000 / len(files),
            detail=f"a full decode of the same files: {decode_seconds * 1000 / len(files):.2f} s per 1,000 (1 thread)",
        )
