"""Pixel metrics at native resolution against the model-resolution path, and the native path's peak memory."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import record


def bench_pixels(args, work: Path):
    """One category of ``--pixel-count`` native pixels (1600 x 1200 images, a third of them defective, with
    blobs and one-pixel scratches as PNG masks), evaluated in a fresh process at native resolution (masks read
    from disk, maps taken back through the inverse of a pad 192 x 192 geometry) and at the model's grid."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "run.py"), "--pixels-child", str(args.pixel_count)]
        + ["--threads", str(args.threads), "--workdir", str(work)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"pixel run failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    native_rate = result["native_pixels"] / result["native_seconds"]
    model_rate = result["model_pixels"] / result["model_seconds"]
    record(
        "pixels",
        "native: pixels/s",
        native_rate,
        detail=f"{result['native_pixels'] / 1e6:.0f} M pixels of {result['images']} images in "
        f"{result['native_seconds']:.0f} s (AUROC, AP, AUPRO; masks decoded twice)",
    )
    record(
        "pixels",
        "model grid: pixels/s",
        model_rate,
        detail=f"{result['model_pixels'] / 1e6:.1f} M pixels (192 x 192 each) in {result['model_seconds']:.1f} s",
    )
    record("pixels", "native / model: seconds per image", result["native_seconds"] / result["model_seconds"])
    record(
        "pixels",
        f"native: peak RSS GiB at {result['native_pixels'] / 1e9:.2f} G pixels",
        result["peak_gib"],
        "<= 4",
        result["peak_gib"] <= 4,
        detail=f"{result['defect_pixels'] / 1e6:.1f} M defect pixels",
    )


def pixels_child(pixel_count: int, threads: int, workdir: Path):
    from PIL import Image

    from tailedcore.data.images import Geometry
    from tailedcore.evaluation.metrics import EvaluationSpec, evaluate_category
    from tailedcore.runtime.compute import set_threads

    set_threads(threads)
    width, height = 1600, 1200
    images = max(3, pixel_count // (width * height))
    rng = np.random.default_rng(0)
    labels, paths, grids, defect_pixels = [], [], [], 0
    folder = workdir / "pixel_masks"
    folder.mkdir(exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(images):
        grid = rng.normal(0, 0.2, size=(24, 24)).astype(np.float32)
        if i % 3 == 2:
            cx, cy, r = rng.integers(100, width - 100), rng.integers(100, height - 100), rng.integers(20, 90)
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
            mask[rng.integers(height), rng.integers(0, width // 2) : width - 10] = True  # a one-pixel scratch
            path = folder / f"{i}_mask.png"
            Image.fromarray(mask.astype(np.uint8) * 255).save(path, compress_level=1)
            defect_pixels += int(mask.sum())
            labels.append("defect")
            paths.append(str(path))
            grid[int(cy / height * 24 * 0.75) + 3, int(cx / width * 24)] += 2.0  # pad 4:3 into a square: rows 3..20
        else:
            labels.append("good")
            paths.append("")
        grids.append(grid)
    del yy, xx
    grids = np.stack(grids)
    common = {
        "labels": labels,
        "mask_paths": paths,
        "sizes": np.array([(width, height)] * images),
        "image_scores": grids.reshape(images, -1).max(1),
        "patch_scores": grids,
    }
    geometry = Geometry(mode="pad", size=(192, 192))
    started = time.perf_counter()
    evaluate_category(**common, spec=EvaluationSpec(geometry=geometry, extra=True, resolution="native"))
    native_seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    started = time.perf_counter()
    evaluate_category(**common, spec=EvaluationSpec(geometry=geometry, extra=True))
    model_seconds = time.perf_counter() - started
    for path in folder.iterdir():
        path.unlink()
    print(
        json.dumps(
            {
                "images": images,
                "native_pixels": images * width * height,
                "model_pixels": images * 192 * 192,
                "defect_pixels": defect_pixels,
                "native_seconds": native_seconds,
                "model_seconds": model_seconds,
                "peak_gib": peak,
            }
        )
    )
