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

from tailedcore.compute import set_threads


def bench_memory(args, work: Path):
    """Peak RSS of a TailedCore fit (LOF, TailSampler, tail views, both coresets) at P training patches of
    1024-d float16 features (784 per image, as wide_resnet50_2 at 224 px), each size in a fresh process."""
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
            "< 16" if num_patches >= 1_500_000 else "",
            result["peak_gib"] < 16 if num_patches >= 1_500_000 else None,
            detail=(
                f"{result['images']} images + {result['tail_patches']} tail-view patches; fit {result['seconds']:.0f} s"
            ),
        )
    if len(sizes) > 1:
        slope, intercept = np.polyfit(np.asarray(sizes) / 1e6, peaks, 1)
        record("memory", "GiB per million patches (fit)", slope, detail=f"intercept {intercept:.2f} GiB")
        visa = intercept + slope * 3.37
        record("memory", "projected peak GiB, VisA step (3.37M)", visa, detail="linear in P")
        # features.dtype float32 (the original's precision): the training pool is held at 4 instead of 2 bytes
        # per value, 1024 values per patch; everything else (float32 chunks, banks, LOF) is unchanged
        extra = 1024 * 2 / 2**30
        for name, millions in (("MVTec AD step (1.5M)", 1.5), ("VisA step (3.37M)", 3.37)):
            float16 = intercept + slope * millions
            record(
                "memory",
                f"float32 cache: projected peak GiB, {name}",
                float16 + extra * millions * 1e6,
                detail=f"float16: {float16:.1f} GiB; + {extra * 1e6:.2f} GiB per million patches",
            )


def memory_child(num_patches: int, threads: int, workdir: Path):
    """MVTec AD step K=4 structure at P patches: 9 tail classes of 4 images (the TailSampler flags them, so
    36 x 47 rot15flip views enter the tail coreset, 1.33M patches) and 6 head classes sharing the rest."""
    from tailedcore.methods.base import FeatureSet, build_method

    set_threads(threads)
    per_image, dim = 784, 1024
    num_images = num_patches // per_image
    rng = np.random.default_rng(0)
    tails = [4] * 9
    heads = [(num_images - sum(tails)) // 6] * 6
    classes = np.repeat(np.arange(15), heads + tails)
    num_images = len(classes)
    centres = rng.normal(size=(15, dim)).astype(np.float32)
    path = workdir / f"mem_{num_patches}.npy"
    patches = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(num_images, 28, 28, dim))
    for start in range(0, num_images, 16):  # written in chunks, like the cache rule
        part = classes[start : start + 16]
        noise = rng.standard_normal(size=(len(part), 28, 28, dim), dtype=np.float32)
        patches[start : start + 16] = (centres[part][:, None, None, :] + noise).astype(np.float16)
    patches.flush()
    del patches
    stored = np.load(path, mmap_mode="r")
    glob = centres[classes] + 0.05 * rng.standard_normal(size=(num_images, dim), dtype=np.float32)
    train = FeatureSet([f"i{i}" for i in range(num_images)], np.asarray(stored), glob)

    def augment(rows, kind, views=47):  # float16 views, generated in chunks (the real augmenter's output dtype)
        out = np.empty((len(rows) * views, 28, 28, dim), dtype=np.float16)
        for start in range(0, len(out), 16):
            out[start : start + 16] = rng.standard_normal(
                size=(len(out[start : start + 16]), 28, 28, dim), dtype=np.float32
            ).astype(np.float16)
        return out

    train.augment = augment
    model = build_method(
        "tailedcore", {"coreset_ratio": 0.001, "tail_augmentation": "rot15flip"}, torch.Generator().manual_seed(0)
    )
    started = time.perf_counter()
    report = model.fit(train)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    path.unlink()
    print(
        json.dumps(
            {
                "peak_gib": peak,
                "images": num_images,
                "tail_patches": report.get("tail_patches", 0),
                "seconds": time.perf_counter() - started,
            }
        )
    )
