"""Position-wise LOF against scikit-learn."""

from __future__ import annotations

import numpy as np
import torch
from common import record, timed

from tailedcore.runtime.compute import resolve_device


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
