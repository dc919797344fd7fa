"""Stage function of rules/splits.smk: one split manifest (generated, or converted from the official lists)
and its statistics."""

from __future__ import annotations

import pandas as pd

from ..data.index import read_index
from ..data.longtail import SplitRules, generate_split, split_statistics
from ..data.official import convert_official
from ..runtime.io import atomic_csv


def make_split(
    *,
    index_path,
    tail: str,
    seed: int,
    noise_ratio: float,
    split_config: dict,
    manifest_path,
    stats_path,
    official: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Generate a split, or convert the official (prune_good, inject_defects) pair when given."""
    rules = SplitRules(
        noise_ratio=noise_ratio,
        exclude_injected_from_test=split_config["exclude_injected_from_test"],
        **split_config["rules"],
    )
    index = read_index(index_path)
    if official:
        manifest = convert_official(
            official[0], official[1], index, rules.tail_threshold, rules.exclude_injected_from_test
        )
    else:
        manifest = generate_split(index, tail, seed, rules)
    atomic_csv(split_statistics(manifest, index), stats_path)
    atomic_csv(manifest, manifest_path)
    return manifest


def fetch_official_manifest(*, kind: str, tail: str, seed: int, name: str, output, local_dir=None, base_url=None):
    """One official manifest file (``<name>.txt``), from a local copy or the pinned commit, sha256-checked."""
    from ..data.official import fetch_official

    return fetch_official(kind, tail, int(seed), f"{name}.txt", output, local_dir=local_dir, base_url=base_url)
