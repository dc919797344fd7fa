"""Peak memory of a TailedCore fit at growing sizes, each in a fresh process."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import record

from tailedcore.runtime.compute import set_threads


def bench_memory(args, work: Path):
    """Peak RSS of a TailedCore fit (LOF, TailSampler, tail views, both coresets at the paper's 10 %) read from
    an on-disk feature cache of 1024-d float32 patches (the paper config's precision; 784 per image, as
    wide_resnet50_2 at 224 px), each size in a fresh process: measured, not modelled."""
    sizes = [int(s) for s in args.memory_sizes.split(",")]
    peaks = []
    for num_patches in sizes:
        out = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve().parents[1] / "run.py"),
                "--memory-child",
                str(num_patches),
                "--threads",
                str(args.threads),
                "--workdir",
                str(work),
                "--memory-ratio",
                str(args.memory_ratio),
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            raise SystemExit(f"memory run at P={num_patches} failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        peaks.append(result["peak_gib"])
        record(
            "memory",
            f"peak RSS GiB at P={num_patches / 1e6:.2f}M",
            result["peak_gib"],
            "<= 6",
            result["peak_gib"] <= 6,
            detail=(
                f"{result['images']} images ({result['cache_gib']:.1f} GiB cache on disk), "
                f"{result['tail_patches']} tail-view patches ({result['views_gib']:.1f} GiB spilled), memory bank "
                f"{result['memory_size']} rows, coreset ratio {args.memory_ratio}; fit {result['seconds']:.0f} s"
            ),
        )
    if len(sizes) > 1:
        slope, intercept = np.polyfit(np.asarray(sizes) / 1e6, peaks, 1)
        record("memory", "GiB per million training patches", slope, detail=f"intercept {intercept:.2f} GiB")


def _write(path: Path, chunks, shape: tuple | None = None) -> None:
    """float32 rows written by plain writes, chunk by chunk (never mapped: no page counts in RSS); with
    ``shape``, as a .npy file, else raw (as fit_score spills tail views)."""
    with open(path, "wb") as handle:
        if shape is not None:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False}
            np.lib.format.write_array_header_1_0(handle, {**header, "shape": shape})
        for chunk in chunks:
            handle.write(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())


def memory_child(num_patches: int, threads: int, workdir: Path, ratio: float = 0.1):
    """MVTec AD step K=4 structure at P patches, 12 head and tail classes like VisA's: 9 tail classes of 4
    images (the TailSampler flags them, so 36 x 47 rot15flip views enter the tail coreset, 1.33 M patches,
    spilled to disk like the fit_score rule does) and the head classes sharing the rest. The features are a
    real feature cache on disk (one float32 .npy per class), read through FeatureStore as fit_score reads it."""
    from tailedcore.features.cache import FeatureStore, cache_paths, write_ids
    from tailedcore.features.rows import CachedArray, PatchRows
    from tailedcore.methods.base import FeatureSet, build_method

    set_threads(threads)
    per_image, dim, grid = 784, 1024, (28, 28)
    num_images = num_patches // per_image
    rng = np.random.default_rng(0)
    tails = [4] * 9
    heads = [(num_images - sum(tails)) // 3] * 3
    sizes = heads + tails
    centres = 3 * rng.normal(size=(len(sizes), dim)).astype(np.float32)
    bases = rng.normal(size=(len(sizes), 4, dim)).astype(np.float32)

    def patches(number: int, images: int) -> np.ndarray:
        """Patches of class ``number`` on a 4-d manifold (plus 1e-3 noise), like real features of low intrinsic
        dimension: the coreset then runs in minutes, as on real features; memory does not depend on values."""
        latent = rng.random(size=(images * per_image, 4), dtype=np.float32)
        noise = 1e-3 * rng.standard_normal(size=(images * per_image, dim), dtype=np.float32)
        return (centres[number] + latent @ bases[number] + noise).reshape(images, *grid, dim)

    folder = workdir / f"cache_{num_patches}"
    folder.mkdir(exist_ok=True)
    ids, categories = [], []
    for number, size in enumerate(sizes):
        category = f"class{number}"
        paths = cache_paths(folder, category)
        chunks = (patches(number, min(16, size - start)) for start in range(0, size, 16))
        _write(paths["patches"], chunks, (size, *grid, dim))
        embeddings = centres[number] + 0.05 * rng.standard_normal(size=(size, dim), dtype=np.float32)
        np.save(paths["global"], embeddings)
        names = [f"{category}_{i}" for i in range(size)]
        write_ids(paths["ids"], names)
        ids += names
        categories += [category] * size
    cache_gib = sum(f.stat().st_size for f in folder.glob("*.npy")) / 2**30
    store = FeatureStore(folder, [f"class{n}" for n in range(len(sizes))])
    train = FeatureSet(ids, store.patch_rows(ids, categories), store.global_features(ids, categories))
    spilled = []

    def augment(rows, kind, views=47):  # float32 views written to disk in chunks, as the fit_score rule does
        path = workdir / f"views_{num_patches}.raw"
        total = len(rows) * views
        _write(
            path,
            (patches(len(heads) + (s // views) % len(tails), min(16, total - s)) for s in range(0, total, 16)),
        )
        spilled.append(path)
        return PatchRows.of(CachedArray.raw(path, (total, *grid, dim), np.float32))

    train.augment = augment
    model = build_method(
        "tailedcore", {"coreset_ratio": ratio, "tail_augmentation": "rot15flip"}, torch.Generator().manual_seed(0)
    )
    started = time.perf_counter()
    report = model.fit(train)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    views_gib = sum(p.stat().st_size for p in spilled) / 2**30
    for path in [*folder.iterdir(), *spilled]:
        path.unlink()
    folder.rmdir()
    print(
        json.dumps(
            {
                "peak_gib": peak,
                "images": len(ids),
                "cache_gib": cache_gib,
                "views_gib": views_gib,
                "tail_patches": report.get("tail_patches", 0),
                "memory_size": report["memory_size"],
                "seconds": seconds,
            }
        )
    )
