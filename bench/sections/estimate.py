"""The full paper run, estimated from the rates measured by the other sections."""

from __future__ import annotations

import numpy as np
import torch
from common import ROWS, record

from tailedcore.plan.estimate import GREEDY_EXPONENT

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
REAL_GREEDY_POINTS = 300_000  # the points of the greedy section's real-feature runs (bench_greedy_real)


def bench_estimate(args):
    """Full paper run (2 datasets x 3 tails x 5 seeds; TailedCore, PatchCore, SoftPatch, PaDiM) from the
    rates measured above, scaled by the cost model of docs/protocol.md §5 (greedy: a power law in P through the
    two measured sizes, M = P / 10; kNN ~ 2*Q*bank*1024, LOF ~ 784*N^2, features ~ WRN50 forwards). TailedCore
    reads SoftPatch's LOF scores and filtered coreset back (`methods.reuse_fits`, the default)."""
    figures = {(r["section"], r["figure"]): r["value"] for r in ROWS}
    greedy = sorted(
        (int(figure.rsplit("=", 1)[1]), value)
        for (section, figure), value in figures.items()
        if section == "greedy" and figure.startswith("ours seconds")
    )
    needed = [
        ("knn", "search GFLOP/s (auto backend)"),
        ("lof", "ours seconds"),
        ("features", "end-to-end images/s"),
    ]
    if any(key not in figures for key in needed) or len(greedy) < 2:
        print("  estimate: needs the features, greedy (two sizes), knn and lof sections")
        return
    (p1, t1), (p2, t2) = greedy[0], greedy[-1]
    exponent = np.log(t2 / t1) / np.log(p2 / p1)

    def greedy_seconds(points):  # a 10 % coreset of ``points``
        return t1 * (points / p1) ** exponent

    flops = figures[("knn", "search GFLOP/s (auto backend)")] * 1e9
    real_greedy_key = ("greedy", "real, 10%: ours seconds")
    real_knn_key = ("knn", "real 1024-d: bound search GFLOP/s (flat-equivalent)")
    lof_rate = figures[("lof", "ours seconds")] / (64 * args.scale * 400**2)  # s per position*N^2
    wrn_key = ("features", "wide_resnet50_2 end-to-end images/s")
    if wrn_key in figures:  # measured (the features section, untrained weights)
        wrn_images, wrn_source = figures[wrn_key], "measured end to end"
    else:  # a model: the lite0 rate over the GMAC ratio
        wrn_images = figures[("features", "end-to-end images/s")] / WRN50_OVER_LITE0
        wrn_source = f"lite0 rate / {WRN50_OVER_LITE0:.0f}"
    feature_jobs = [
        DATASET_IMAGES[name] / count / wrn_images
        for name, count in (("mvtecad", 15), ("visa", 12))
        for _ in range(count)
    ]
    _paper_run(args, "", greedy_seconds, flops, (lof_rate, (wrn_images, wrn_source), feature_jobs))
    if real_greedy_key in figures and real_knn_key in figures:  # the same model with ELPV's real-feature rates
        real_greedy = figures[real_greedy_key]
        real_points = REAL_GREEDY_POINTS * args.scale
        real_flops = figures[real_knn_key] * 1e9

        def real_greedy_seconds(points):  # the growth measured on real features too (the cost model's P^1.6)
            return real_greedy * (points / real_points) ** GREEDY_EXPONENT

        _paper_run(
            args,
            ", real-feature rates",
            real_greedy_seconds,
            real_flops,
            (lof_rate, (wrn_images, wrn_source), feature_jobs),
        )


def _paper_run(args, label: str, greedy_seconds, flops: float, rates: tuple):
    """Record the per-setting and whole-run hours of the paper run under one set of greedy and kNN rates."""
    lof_rate, (wrn_images, wrn_source), feature_jobs = rates
    total = sum(feature_jobs)  # the feature cache, once
    fit_jobs = []
    for setting, (num, patches, tail, bank, queries, views) in PAPER_RUNS.items():
        kept = 0.85 * patches
        lof_one = lof_rate * 784 * num**2

        def knn_seconds(size, queries=queries):
            return 2 * queries * 1024 * size / flops

        methods = {  # one job each (the terms of the cost model, split by method)
            "patchcore": greedy_seconds(patches) + knn_seconds(0.1 * patches),
            "softpatch": lof_one + greedy_seconds(kept) + knn_seconds(0.1 * kept),
            # its LOF and filtered coreset are SoftPatch's, read back (methods.reuse_fits, on by default)
            "tailedcore": greedy_seconds(tail) + knn_seconds(bank) + views / wrn_images,
            "padim": 0.0,  # per-position Gaussians: seconds, negligible here
        }
        seconds = sum(methods.values())
        fit_jobs += [value for value in methods.values() for _ in range(5)]
        total += 5 * seconds
        record(
            "estimate",
            f"{setting}: 4 methods, one seed (min){label}",
            seconds / 60,
            detail=", ".join(f"{m} {v / 60:.0f}" for m, v in methods.items()) + " min",
        )
    record(
        "estimate",
        f"full paper run, 30 settings x 4 methods (hours){label}",
        total / 3600,
        detail=f"device {args.device}, {args.threads} threads; WRN50 at {wrn_images:.1f} images/s ({wrn_source})",
    )
    if args.device == "cuda":
        gpus = sorted({1, 8, torch.cuda.device_count()})
        for count in gpus:
            hours = (makespan(feature_jobs, count) + makespan(fit_jobs, count)) / 3600
            record(
                "estimate",
                f"full paper run on {count} GPU(s), one job per GPU (hours){label}",
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
