"""Noisy long-tailed split manifests: generator (docs/protocol.md §1.3), reader, statistics.

A manifest is one CSV, ``results/{dataset}/splits/{tail}/seed{seed}.csv``, with one row per image that a
run uses: ``image_id, category, subset (train|test), role, class_role (head|tail)``. Training rows have
role ``clean`` or ``noise`` (a test defect image injected into the training pool); test rows have role
``test``, or ``leaked`` for a test image that is also a noise image of the training pool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

MANIFEST_COLUMNS = ["image_id", "category", "subset", "role", "class_role"]
STATS_COLUMNS = [
    "category",
    "class_role",
    "n_train_clean",
    "n_train_noise",
    "n_test",
    "n_test_anomalous",
    "n_test_leaked",
]
_STEP = re.compile(r"^step_k(\d+)$")


@dataclass(frozen=True)
class SplitRules:
    """The generator's rules; the defaults are the paper's (docs/protocol.md §1.3)."""

    noise_ratio: float = 0.1
    step_tail_fraction: float = 0.6
    pareto_alpha: float = 6.0
    pareto_eps: float = 0.01
    pareto_min_size: int = 5
    tail_threshold: int = 20
    exclude_injected_from_test: bool = False

    @classmethod
    def for_dataset(cls, block: dict, splits: dict) -> SplitRules:
        """The rules of a config dataset ``block`` under the config's ``splits`` block."""
        return cls(noise_ratio=block.get("noise_ratio", 0.1), **(splits.get("rules") or {}))


def pareto_profile(num_classes: int, alpha: float, eps: float) -> np.ndarray:
    """Relative class sizes pi/pi_max of the discrete Pareto profile, in descending order."""
    quantile = lambda u: (1.0 - u) ** (-1.0 / alpha)  # noqa: E731
    cdf = lambda x: 1.0 - x ** (-alpha)  # noqa: E731
    edges = np.linspace(quantile(eps), quantile(1.0 - eps), num_classes + 1)
    mass = np.diff(cdf(edges))
    return np.sort(mass / mass.max())[::-1]


def tail_kind(tail: str) -> tuple[str, int | None]:
    """'pareto' -> ('pareto', None); 'step_k4' -> ('step', 4)."""
    if tail == "pareto":
        return "pareto", None
    match = _STEP.match(tail)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"unknown tail type {tail!r}; use 'pareto' or 'step_k<K>' with K >= 1")
    return "step", int(match.group(1))


class SplitError(ValueError):
    """A split that would not be long-tailed; the message names the classes, their sizes and the fix."""


def full_size_tails(index: pd.DataFrame, tails: list[str], rules: SplitRules) -> list[str]:
    """Problems visible from the class sizes alone: a step K or Pareto minimum at least a class's training
    size would leave that class, if drawn as a tail, at its full size (no long tail)."""
    sizes = index[index["split"] == "train"].groupby("category").size()
    problems = []
    for tail in tails:
        kind, k_keep = tail_kind(tail)
        limit = k_keep if kind == "step" else rules.pareto_min_size
        what = f"K = {k_keep}" if kind == "step" else f"the Pareto minimum {rules.pareto_min_size}"
        for category, size in sizes.items():
            if size <= limit:
                problems.append(
                    f"{tail}: class {category} has {size} training images, so {what} keeps all of them and it "
                    f"cannot be a tail; use a smaller K / splits.rules.pareto_min_size (below {size}), or give the "
                    "class more training images"
                )
    return problems


def size_problems(sizes: dict[str, int], tails: list[str], seeds: list[int], rules: SplitRules) -> list[str]:
    """:func:`split_problems` from the training images per class alone (what decides every tail and size)."""
    rows = [(f"{c}/train/good/{i}", c, "train", "good") for c, n in sizes.items() for i in range(n)]
    return split_problems(pd.DataFrame(rows, columns=["image_id", "category", "split", "label"]), tails, seeds, rules)


def split_problems(index: pd.DataFrame, tails: list[str], seeds: list[int], rules: SplitRules) -> list[str]:
    """Everything the split stage would reject for these tails and seeds, found by drawing every split (the
    draw needs the training rows only: the test rows decide no tail and no class size)."""
    problems = []
    for tail in tails:
        sizes = full_size_tails(index, [tail], rules)  # any draw would fail: said once, for every class
        problems += sizes
        for seed in seeds if not sizes else []:
            try:
                generate_split(index, tail, seed, rules)
            except SplitError as err:
                problems.append(str(err))
    return problems


def generate_split(index: pd.DataFrame, tail: str, seed: int, rules: SplitRules) -> pd.DataFrame:
    """Draw one noisy long-tailed split from a dataset index; deterministic in (index, tail, seed, rules)."""
    kind, k_keep = tail_kind(tail)
    rng = np.random.default_rng(seed)
    categories = sorted(index["category"].unique())
    train = index[index["split"] == "train"]
    defects = index[(index["split"] == "test") & (index["label"] != "good")]
    train_ids = {c: train.loc[train["category"] == c, "image_id"].to_numpy() for c in categories}
    defect_ids = {c: defects.loc[defects["category"] == c, "image_id"].to_numpy() for c in categories}
    n_orig = {c: len(train_ids[c]) for c in categories}

    if kind == "step":
        n_tail = round(rules.step_tail_fraction * len(categories))
        tail_set = set(rng.choice(categories, size=n_tail, replace=False).tolist())
        kept = {c: (min(k_keep, n_orig[c]) if c in tail_set else n_orig[c]) for c in categories}
        noise = {
            c: 0 if c in tail_set else min(len(defect_ids[c]), round(rules.noise_ratio * n_orig[c])) for c in categories
        }
    else:
        profile = pareto_profile(len(categories), rules.pareto_alpha, rules.pareto_eps)
        shares = dict(zip(categories, rng.permutation(profile)))
        largest = max(categories, key=lambda c: shares[c])
        kept = {}
        for c in categories:
            if c == largest:
                kept[c] = n_orig[c]
            else:
                target = round(shares[c] * n_orig[largest])
                kept[c] = max(min(rules.pareto_min_size, n_orig[c]), min(n_orig[c], target))
        tail_set = {c for c in categories if kept[c] < rules.tail_threshold}
        heads = [c for c in categories if c not in tail_set]
        total = round(rules.noise_ratio * sum(kept.values()))
        # one entry per kept head image; sampling T of them allocates noise in proportion to head size
        pool = np.concatenate([[i] * kept[c] for i, c in enumerate(heads)]) if heads else np.zeros(0, int)
        drawn = rng.choice(pool, size=min(total, len(pool)), replace=False) if len(pool) else pool
        counts = np.bincount(drawn.astype(int), minlength=len(heads))
        noise = {c: 0 for c in categories}
        for i, c in enumerate(heads):
            noise[c] = min(int(counts[i]), len(defect_ids[c]))

    full = [c for c in sorted(tail_set) if kept[c] >= n_orig[c]]
    if full:
        smallest = min(n_orig[c] for c in full)
        if kind == "step":
            advice = (
                f"use a step K below {smallest} (splits.tails: step_k<K>), or give these classes more training images"
            )
        else:
            advice = (
                f"with Pareto, a class with fewer than splits.rules.tail_threshold ({rules.tail_threshold}) training "
                f"images whose drawn share keeps it whole is a tail at full size: set splits.rules.tail_threshold to "
                f"{smallest} or less, or give these classes more training images"
            )
        raise SplitError(
            f"{tail}, seed {seed}: the tail classes "
            + ", ".join(f"{c} ({n_orig[c]} training images)" for c in full)
            + f" keep their full size, so the split has no long tail; {advice}"
        )
    rows = []
    for c in categories:
        role = "tail" if c in tail_set else "head"
        keep_ids = rng.permutation(train_ids[c])[: kept[c]] if kept[c] < n_orig[c] else train_ids[c]
        noise_ids = rng.choice(defect_ids[c], size=noise[c], replace=False) if noise[c] else []
        rows += [(i, c, "train", "clean", role) for i in sorted(keep_ids)]
        rows += [(i, c, "train", "noise", role) for i in sorted(noise_ids)]
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    return add_test_rows(manifest, index, rules.exclude_injected_from_test)


def add_test_rows(train_manifest: pd.DataFrame, index: pd.DataFrame, exclude_injected: bool) -> pd.DataFrame:
    """Append the test set: the full original test split (the paper's protocol), injected images marked
    ``leaked``, or, with ``exclude_injected``, without the injected images."""
    noise_ids = set(train_manifest.loc[train_manifest["role"] == "noise", "image_id"])
    class_role = train_manifest.groupby("category")["class_role"].first()
    test = index[index["split"] == "test"]
    rows = []
    for image_id, category in zip(test["image_id"], test["category"]):
        if image_id in noise_ids:
            if exclude_injected:
                continue
            rows.append((image_id, category, "test", "leaked", class_role[category]))
        else:
            rows.append((image_id, category, "test", "test", class_role[category]))
    test_manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    return pd.concat([train_manifest, test_manifest], ignore_index=True)


def split_statistics(manifest: pd.DataFrame, index: pd.DataFrame) -> pd.DataFrame:
    """Per category: class role, clean and noise training counts, test count, anomalies, leaked count."""
    labels = index.set_index("image_id")["label"]
    rows = []
    for category, part in manifest.groupby("category", sort=True):
        train, test = part[part["subset"] == "train"], part[part["subset"] == "test"]
        rows.append(
            {
                "category": category,
                "class_role": part["class_role"].iloc[0],
                "n_train_clean": int((train["role"] == "clean").sum()),
                "n_train_noise": int((train["role"] == "noise").sum()),
                "n_test": len(test),
                "n_test_anomalous": int((labels.loc[test["image_id"]] != "good").sum()),
                "n_test_leaked": int((test["role"] == "leaked").sum()),
            }
        )
    return pd.DataFrame(rows, columns=STATS_COLUMNS)


def read_manifest(path) -> pd.DataFrame:
    from ..runtime.io import read_checked_csv

    return read_checked_csv(path, "split manifest", MANIFEST_COLUMNS, dtype=str, keep_default_na=False)[
        MANIFEST_COLUMNS
    ]
