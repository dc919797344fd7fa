"""Speed and memory of every heavy stage, each as a RATIO against a reference measured in the same run.

    python bench/run.py                       # all sections, CPU, sizes of the issue (about 6 minutes on 2 cores)
    python bench/run.py --sections greedy,knn # some sections
    python bench/run.py --device cuda --scale 4   # larger sizes on the GPU (bench/gpu_check.sh)

Prints one table and writes results/bench/<section>.csv (figure, value, target, met, detail). Absolute
times on a shared machine are noise; the ratios are the figures. Identity of results is asserted here
and in the unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tailedcore.compute import resolve_device, set_threads  # noqa: E402

ROWS: list[dict] = []


def record(section: str, figure: str, value: float, target: str = "", met: bool | None = None, detail: str = ""):
    ROWS.append(
        {
            "section": section,
            "figure": figure,
            "value": round(float(value), 4),
            "target": target,
            "met": "" if met is None else ("yes" if met else "NO"),
            "detail": detail,
        }
    )
    mark = "" if met is None else ("  [met]" if met else "  [NOT MET]")
    print(f"  {section:9s} {figure:44s} {value:12.4g}  {target:8s}{mark}  {detail}", flush=True)


def timed(fn, *args, repeat: int = 1, **kwargs):
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best, out


# --------------------------------------------------------------------------------------------- features
def bench_features(args, work: Path) -> np.ndarray:
    """End-to-end cache rule (decode, resize, forward, aggregate, write float16) vs the bare forward."""
    from tailedcore.data.index import build_mvtec_index
    from tailedcore.data.synthetic import CATEGORIES, SyntheticSpec, write_dataset
    from tailedcore.features.cache import FeatureConfig, FeatureExtractor, extract_category

    per_category = int(np.ceil(256 * args.scale / len(CATEGORIES)))  # a unified pool: every category
    root = work / "images"
    spec = SyntheticSpec(
        seed=11, image_size=args.image_size, n_train=per_category, n_test_good=1, n_test_defect_per_type=1
    )
    write_dataset(root, spec)
    index = build_mvtec_index(root, list(CATEGORIES))
    index = index.assign(category="pool")  # one cache file for the whole pool
    config = FeatureConfig(
        backbone="efficientnet_lite0",
        resize=args.image_size,
        crop=args.image_size,
        pretrain_dim=256,
        target_dim=256,
        batch_size=32,
        device=args.device,
    )
    extractor = FeatureExtractor(config)
    extract_category(index.head(32), "pool", config, work / "warm", extractor, threads=args.threads)  # warm-up
    seconds, _ = timed(
        extract_category, index, "pool", config, work / "features", extractor, threads=args.threads, repeat=2
    )
    end_to_end = len(index) / seconds
    batch = torch.randn(config.batch_size, 3, args.image_size, args.image_size, device=extractor.device)

    @torch.no_grad()
    def forwards():
        for _ in range(0, len(index), config.batch_size):
            extractor.backbone.forward(batch)

    bare_seconds, _ = timed(forwards, repeat=2)
    bare = len(index) / bare_seconds
    record("features", "end-to-end images/s", end_to_end, detail=f"{len(index)} images {args.image_size}px")
    record("features", "bare forward images/s", bare)
    record("features", "end-to-end / bare forward", end_to_end / bare, ">= 0.8", end_to_end / bare >= 0.8)
    # real images are not square: the same images cut to 5:3 and letterboxed (pad) or squashed (resize)
    from PIL import Image

    wide = work / "wide"
    wide.mkdir(exist_ok=True)
    wide_paths = []
    for i, path in enumerate(index["image_path"]):
        with Image.open(path) as image:
            width, height = image.size
            strip = image.crop((0, height // 5, width, height - height // 5))  # 5:3
        strip.save(wide / f"{i}.png")
        wide_paths.append(str(wide / f"{i}.png"))
    wide_index = index.assign(image_path=wide_paths)
    for mode in ("pad", "resize"):
        geometry = {"geometry": mode, "size": (args.image_size, args.image_size)}
        mode_config = FeatureConfig(**{**config.__dict__, **geometry})
        seconds, _ = timed(
            extract_category, wide_index, "pool", mode_config, work / mode, extractor, threads=args.threads, repeat=2
        )
        rate = len(index) / seconds
        record(
            "features",
            f"{mode} geometry end-to-end / bare forward",
            rate / bare,
            ">= 0.8",
            rate / bare >= 0.8,
            detail=f"5:3 images into {args.image_size} x {args.image_size}: {rate:.1f} images/s",
        )
    patches = np.load(work / "features" / "pool.patches.npy")
    return patches.reshape(-1, patches.shape[-1])


# --------------------------------------------------------------------------------------------- index
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


# --------------------------------------------------------------------------------------------- greedy
def bench_greedy(args, patches: np.ndarray):
    from reference import greedy_original

    from tailedcore.samplers.greedy import greedy_kcenter, random_projection

    num_points = 200_000 * args.scale
    reps = int(np.ceil(num_points / len(patches)))
    data = np.concatenate([patches] * reps)[:num_points]
    if reps > 1:  # distinct points: tiny jitter on the repeated copies
        data = data + np.random.default_rng(0).normal(0, 1e-3, data.shape).astype(data.dtype)
    points = random_projection(data, 128, torch.Generator().manual_seed(0))
    num_select = num_points // 10
    ours_seconds, (ours, work) = timed(greedy_kcenter, points, num_select, 7, args.device, True, True)
    detail = f"P={num_points} d=128 M={num_select}"
    record("greedy", "ours seconds", ours_seconds, detail=f"{detail}; computed {100 * work:.1f}% of P*M distances")
    if args.device == "cpu":
        full_seconds, full = timed(greedy_kcenter, points, num_select, 7, "cpu", False)
        same = bool(np.array_equal(ours, full))
        record("greedy", "full update (same kernel) seconds", full_seconds, detail="identical indices: " + str(same))
        record(
            "greedy",
            "speed-up vs full update, same arithmetic",
            full_seconds / ours_seconds,
            ">= 4",
            full_seconds / ours_seconds >= 4,
        )
        if not same:
            raise SystemExit("greedy: pruned selection differs from the full update")
    prefix = min(num_select, 300)
    ref_seconds, ref = timed(greedy_original, points, prefix, 7)
    ref_total = ref_seconds / prefix * num_select  # constant cost per iteration: a full pass each time
    agree = int(np.argmax(np.append(ours[:prefix] != ref, True)))
    record(
        "greedy",
        "original-style reference seconds (extrapolated)",
        ref_total,
        detail=f"{prefix} iterations timed; same first {agree} of {prefix} indices",
    )
    record(
        "greedy",
        "speed-up vs original-style reference",
        ref_total / ours_seconds,
        ">= 4",
        ref_total / ours_seconds >= 4,
    )
    if args.device == "cuda":
        cpu_seconds, cpu = timed(greedy_kcenter, points, num_select, 7, "cpu", True)
        agree = int(np.argmax(np.append(ours != cpu, True)))
        overlap = len(np.intersect1d(ours, cpu)) / num_select
        record("greedy", "CUDA vs CPU: same leading indices", agree, detail=f"of {num_select}")
        record("greedy", "CUDA vs CPU: coreset overlap", overlap, ">= 0.99", overlap >= 0.99)
        record("greedy", "CPU (pruned) seconds", cpu_seconds)


# --------------------------------------------------------------------------------------------- kNN
def bench_knn(args, patches: np.ndarray):
    from tailedcore.knn import knn_search

    rng = np.random.default_rng(1)
    order = rng.permutation(len(patches))  # disjoint query and memory rows: no exact self-matches
    queries = np.ascontiguousarray(patches[order[: 16384 * args.scale]], dtype=np.float32)
    memory = np.ascontiguousarray(patches[order[-16384 * args.scale :]], dtype=np.float32)
    dim = queries.shape[1]
    flop = 2.0 * len(queries) * len(memory) * dim
    device = resolve_device(args.device)
    a = torch.from_numpy(queries).to(device)
    b = torch.from_numpy(memory).to(device)
    mm_seconds, _ = timed(lambda: a @ b.T, repeat=3)
    knn_search(queries[:64], memory, 1, "auto", 16384, args.device)  # calibrates this size class once (cached)
    search_seconds, (dist, idx) = timed(knn_search, queries, memory, 1, "auto", 16384, args.device, repeat=2)
    torch_seconds, _ = timed(knn_search, queries, memory, 1, "torch", 16384, args.device, repeat=2)
    record(
        "knn",
        "matmul GFLOP/s (same shapes)",
        flop / mm_seconds / 1e9,
        detail=f"Q={len(queries)} M={len(memory)} d={dim}",
    )
    record("knn", "search GFLOP/s (auto backend)", flop / search_seconds / 1e9)
    record("knn", "torch backend GFLOP/s", flop / torch_seconds / 1e9)
    record("knn", "search / matmul FLOP/s", mm_seconds / search_seconds, ">= 0.5", mm_seconds / search_seconds >= 0.5)
    faiss_seconds, (dist_f, idx_f) = timed(knn_search, queries, memory, 1, "faiss", 16384, args.device, repeat=2)
    dist_t, idx_t = knn_search(queries, memory, 1, "torch", 16384, args.device)
    record("knn", "faiss backend GFLOP/s", flop / faiss_seconds / 1e9)
    from tailedcore.knn import choose_backend

    chosen = choose_backend(memory, 1, device)
    fastest = min(torch_seconds, faiss_seconds)
    record(
        "knn",
        "auto backend / fastest backend",
        fastest / search_seconds,
        ">= 0.95",
        fastest / search_seconds >= 0.95,
        detail=f"auto chose {chosen}; torch {torch_seconds:.2f} s, faiss {faiss_seconds:.2f} s",
    )
    gap = float(np.max(np.abs(dist_f - dist_t) / np.maximum(dist_f, 1e-6)))
    same_idx = float(np.mean(idx_f == idx_t))
    record(
        "knn",
        "faiss vs torch: max relative distance gap",
        gap,
        "<= 1e-4",
        gap <= 1e-4,
        detail=f"same neighbour for {100 * same_idx:.3f}% of queries (others: equal-distance ties)",
    )


# --------------------------------------------------------------------------------------------- LOF
def bench_lof(args, patches: np.ndarray):
    from reference import lof_sklearn

    from tailedcore.samplers.greedy import random_projection
    from tailedcore.samplers.lof import local_outlier_factor

    num_images, positions = 400, 64 * args.scale
    rng = np.random.default_rng(2)
    rows = rng.choice(len(patches), num_images * positions, replace=len(patches) < num_images * positions)
    projected = random_projection(patches[rows], 128, torch.Generator().manual_seed(1))
    by_position = projected.reshape(positions, num_images, 128).astype(np.float64)
    device = resolve_device(args.device)
    ours_seconds, ours = timed(lambda: local_outlier_factor(torch.from_numpy(by_position).to(device), 6).cpu().numpy())
    ref_seconds, ref = timed(lof_sklearn, by_position, 6)
    gap = float(np.max(np.abs(ours - ref) / np.abs(ref)))
    record("lof", "ours seconds", ours_seconds, detail=f"{positions} positions x {num_images} images x 128-d, k=6")
    record("lof", "scikit-learn per position seconds", ref_seconds)
    record("lof", "max relative score difference", gap, "<= 1e-5", gap <= 1e-5)
    record("lof", "speed-up vs scikit-learn", ref_seconds / ours_seconds, ">= 5", ref_seconds / ours_seconds >= 5)


# --------------------------------------------------------------------------------------------- TailSampler
def bench_tail(args):
    from reference import tail_neighbourhoods_per_row

    from tailedcore.samplers.tail import TailSamplerConfig, estimate_tail

    rng = np.random.default_rng(3)
    sizes = [905, 900, 542, 450, 450, 400, 300, 200, 100, 28, 19, 6]  # N = 4,300, VisA-like
    centres = rng.normal(size=(len(sizes), 256))
    embeddings = np.concatenate([c + 0.5 * rng.normal(size=(n, 256)) for c, n in zip(centres, sizes)])
    ours_seconds, estimate = timed(estimate_tail, embeddings, TailSamplerConfig(), repeat=2)

    def reference():
        from tailedcore.samplers.tail import class_size_list, tail_cut

        _, kappa = tail_neighbourhoods_per_row(embeddings)
        size_list = class_size_list(kappa)
        elbow, cap = tail_cut(size_list, 0.15)
        return kappa, kappa <= min(elbow, cap)

    ref_seconds, (kappa, mask) = timed(reference)
    same = bool(np.array_equal(kappa, estimate.class_sizes) and np.array_equal(mask, estimate.tail_mask))
    record("tail", "ours seconds", ours_seconds, detail=f"N={len(embeddings)}; identical output: {same}")
    record("tail", "per-row reference seconds", ref_seconds)
    record(
        "tail", "speed-up vs per-row reference", ref_seconds / ours_seconds, ">= 20", ref_seconds / ours_seconds >= 20
    )
    if not same:
        raise SystemExit("tail: vectorised TailSampler differs from the per-row reference")


# --------------------------------------------------------------------------------------------- memory
def bench_memory(args, work: Path):
    """Peak RSS of a TailedCore fit (LOF, TailSampler, tail views, both coresets) at P training patches of
    1024-d float16 features (784 per image, as wide_resnet50_2 at 224 px), each size in a fresh process."""
    sizes = [int(s) for s in args.memory_sizes.split(",")]
    peaks = []
    for num_patches in sizes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
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


# --------------------------------------------------------------------------------------------- estimate
# Per TailedCore run (docs/protocol.md §5, upper ends of the ranges): training images N, training patches P, tail-branch
# patches, memory bank, test query patches Q, augmented tail views; features are cached once per dataset.
PAPER_RUNS = {  # setting: (N, P, tail patches, bank, Q, tail views)
    "mvtecad/pareto": (979, 0.77e6, 1.24e6, 188e3, 1.35e6, 1400),
    "mvtecad/step_k1": (1885, 1.48e6, 0.34e6, 159e3, 1.35e6, 423),
    "mvtecad/step_k4": (1912, 1.50e6, 1.35e6, 263e3, 1.35e6, 1692),
    "visa/pareto": (2183, 1.71e6, 0.30e6, 176e3, 1.70e6, 280),
    "visa/step_k1": (4273, 3.35e6, 0.04e6, 289e3, 1.70e6, 49),
    "visa/step_k4": (4294, 3.37e6, 0.18e6, 304e3, 1.70e6, 196),
}
DATASET_IMAGES = {"mvtecad": 5354, "visa": 10821}
WRN50_OVER_LITE0 = 11.4 / 0.39  # GMAC per 224 px image (wide_resnet50_2 to layer4 / efficientnet_lite0)


def bench_estimate(args):
    """Full paper run (2 datasets x 3 tails x 5 seeds; TailedCore, PatchCore, SoftPatch, PaDiM) from the
    rates measured above, scaled by the cost model of docs/protocol.md §5 (greedy ~ P*M, kNN ~ 2*Q*bank*1024, LOF ~
    784*N^2, features ~ WRN50 forwards)."""
    figures = {(r["section"], r["figure"]): r["value"] for r in ROWS}
    needed = [
        ("greedy", "ours seconds"),
        ("knn", "search GFLOP/s (auto backend)"),
        ("lof", "ours seconds"),
        ("features", "end-to-end images/s"),
    ]
    if any(key not in figures for key in needed):
        print("  estimate: needs the features, greedy, knn and lof sections")
        return
    greedy_rate = figures[("greedy", "ours seconds")] / (
        200_000 * args.scale * 20_000 * args.scale
    )  # s per point*centre
    flops = figures[("knn", "search GFLOP/s (auto backend)")] * 1e9
    lof_rate = figures[("lof", "ours seconds")] / (64 * args.scale * 400**2)  # s per position*N^2
    wrn_images = figures[("features", "end-to-end images/s")] / WRN50_OVER_LITE0
    feature_jobs = [
        DATASET_IMAGES[name] / count / wrn_images
        for name, count in (("mvtecad", 15), ("visa", 12))
        for _ in range(count)
    ]
    total = sum(feature_jobs)  # the feature cache, once
    fit_jobs = []
    for setting, (num, patches, tail, bank, queries, views) in PAPER_RUNS.items():
        kept = 0.85 * patches
        lof_one = lof_rate * 784 * num**2

        def knn_seconds(size, queries=queries):
            return 2 * queries * 1024 * size / flops

        methods = {  # one job each (the terms of the cost model, split by method)
            "patchcore": greedy_rate * patches * 0.1 * patches + knn_seconds(0.1 * patches),
            "softpatch": lof_one + greedy_rate * kept * 0.1 * kept + knn_seconds(0.1 * kept),
            "tailedcore": lof_one
            + greedy_rate * (kept * 0.1 * kept + tail * 0.1 * tail)
            + knn_seconds(bank)
            + views / wrn_images,
            "padim": 0.0,  # per-position Gaussians: seconds, negligible here
        }
        seconds = sum(methods.values())
        fit_jobs += [value for value in methods.values() for _ in range(5)]
        total += 5 * seconds
        record(
            "estimate",
            f"{setting}: 4 methods, one seed (min)",
            seconds / 60,
            detail=", ".join(f"{m} {v / 60:.0f}" for m, v in methods.items()) + " min",
        )
    record(
        "estimate",
        "full paper run, 30 settings x 4 methods (hours)",
        total / 3600,
        detail=(
            f"device {args.device}, {args.threads} threads; WRN50 at {wrn_images:.1f} images/s "
            f"(lite0 rate / {WRN50_OVER_LITE0:.0f})"
        ),
    )
    if args.device == "cuda":
        gpus = sorted({1, 8, torch.cuda.device_count()})
        for count in gpus:
            hours = (makespan(feature_jobs, count) + makespan(fit_jobs, count)) / 3600
            record(
                "estimate",
                f"full paper run on {count} GPU(s), one job per GPU (hours)",
                hours,
                detail="features first, then 120 fit jobs, longest first (a model from the measured rates)",
            )


def makespan(jobs: list[float], workers: int) -> float:
    """Seconds to run ``jobs`` on ``workers`` devices, one job each at a time, longest first."""
    import heapq

    loads = [0.0] * workers
    for seconds in sorted(jobs, reverse=True):
        heapq.heapreplace(loads, loads[0] + seconds)
    return max(loads)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="index,features,greedy,knn,lof,tail,estimate,memory")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--scale", type=int, default=1, help="multiply the problem sizes (GPU runs)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--memory-sizes", default="375000,750000,1500000")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench"))
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.threads, Path(args.workdir))
        return
    set_threads(args.threads)
    sections = args.sections.split(",")
    print(
        f"tailedcore bench: {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"device {args.device}, "
        f"torch {torch.__version__}, sections {sections}"
    )
    with tempfile.TemporaryDirectory(prefix="tailedcore-bench-") as tmp:
        work = Path(tmp)
        patches = None
        if {"features", "greedy", "knn", "lof"} & set(sections):
            patches = bench_features(args, work)  # real patch features for the later sections
        for name in sections:
            if name == "greedy":
                bench_greedy(args, patches)
            elif name == "knn":
                bench_knn(args, patches)
            elif name == "lof":
                bench_lof(args, patches)
            elif name == "tail":
                bench_tail(args)
            elif name == "index":
                bench_index(args, work)
            elif name == "memory":
                bench_memory(args, work)
            elif name == "estimate":
                bench_estimate(args)
            elif name != "features":
                raise SystemExit(f"unknown section {name!r}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(ROWS)
    table.insert(0, "device", args.device)
    table.insert(1, "threads", args.threads)
    for section, part in table.groupby("section", sort=False):
        part.to_csv(out / f"{section}{'' if args.device == 'cpu' else '_' + args.device}.csv", index=False)
    missed = table[table["met"] == "NO"]
    print(
        f"\n{len(table)} figures written to {out}; targets met: {(table['met'] == 'yes').sum()}, missed: {len(missed)}"
    )


if __name__ == "__main__":
    main()
