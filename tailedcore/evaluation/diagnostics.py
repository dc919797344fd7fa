"""Why a method wins: the tail-versus-noise trade-off, from the provenance of each memory bank and the split's
truth (docs/protocol.md §3.3). Over 300 lines: the truth, the per-run quantities and their seed summary share
the definitions below; split, each part would restate them.

The truth of a split (:func:`patch_truth`): every training image's class role (tail or head class) and role
(clean, or injected noise: a defective test image), and for every noise image the share of each patch cell
covered by its defect mask, on the feature grid, after the same resize (bilinear, kept soft: a pixel's share),
crop or padding as the image. A
training patch belongs to

- ``clean``: a patch of a clean image; ``noise``: any patch of a noise image;
- ``defect``: a cell of a noise image that a defect touches (the headline: a patch feature aggregates a
  neighbourhood wider than its cell, so a cell that touches a defect already carries it, and thin defects
  never fill half a cell; the resize's support reaches one grid pixel beyond a defect, so a cell whose border
  a defect touches counts too); ``defect_half``: at least half the cell is defect;

each within the tail classes (group ``tail``, the paper's C_t), the head classes (``head``, C_h) or ``all``
(``category`` ``*``), and within each category (``category`` its name, ``group`` its role in the split).
The quantities of one fitted model (:func:`run_diagnostics`), every share in percent:

- memory bank: ``bank_share`` (share of the memory rows in the set), ``pool_share`` (share of the training
  patches), ``enrichment`` = bank_share / pool_share (1: as many as a uniform draw would keep);
- denoising filter: ``removed`` (share of the set's training patches the filter dropped), ``filter_auroc``
  and ``filter_ap`` of its outlier score for the set's patches against clean patches, ``filter_ap_chance``
  (the AP of a random score: the positives' prevalence);
- TailSampler: ``called_tail`` (share of the set's images it calls tail), ``tail_precision``,
  ``tail_recall`` and ``tail_f1`` against the true tail images (clean images of tail classes),
  ``noise_called_tail`` (noise images called tail, a count), ``class_size_error`` (mean |estimate - true| /
  true over the set's images, true = the class's training images) and ``class_size_spearman``;
- test scores, over the test patches of good images (``good``), of defective images (``defective``) and the
  cells a defect touches (``defect``, when every test mask is known), content cells only (pad geometry):
  ``test_score`` (their mean patch score), and the share whose nearest memory row is a defect cell
  (``match_defect``), a noise image's (``match_noise``) or of their own class (``match_same_class``). A
  method collapses on a class when its defect patches score no higher than its good ones; these say whether
  they found defect rows to match.

A model without a memory bank (PaDiM) or a method without a provenance file has no rows: absent, not zero.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from PIL import Image

from ..data.images import Geometry, read_mask

SUBSETS = ("clean", "noise", "defect", "defect_half")
GROUPS = ("tail", "head", "all")
TRUTH_KEYS = ("image_ids", "category", "class_role", "role", "defect_fraction", "mask_known")
RUN_COLUMNS = ["quantity", "subset", "group", "category", "unit", "value", "count"]
ALL_CATEGORIES = "*"  # the category of a class group's rows
EVERY = ("all", ALL_CATEGORIES)  # the scope of every training image
UNITS = {"enrichment": "ratio", "noise_called_tail": "images", "class_size_spearman": "rho", "test_score": "score"}
BOUNDS = {
    "%": (0.0, 100.0),
    "ratio": (0.0, np.inf),
    "images": (0.0, np.inf),
    "rho": (-1.0, 1.0),
    "score": (0.0, np.inf),
}
QUANTITY_TITLES = {
    "enrichment": "memory bank: share of the bank / share of the training pool (1 = proportional)",
    "bank_share": "memory bank: share of the memory rows (%)",
    "pool_share": "training pool: share of the training patches (%)",
    "removed": "denoising filter: share of the training patches removed (%)",
    "filter_auroc": "denoising filter: AUROC of its outlier score, these patches against clean patches (%)",
    "filter_ap": "denoising filter: AP of its outlier score, these patches against clean patches (%)",
    "filter_ap_chance": "denoising filter: AP of a random score (the prevalence, %)",
    "called_tail": "TailSampler: share of the images called tail (%)",
    "tail_precision": "TailSampler: precision of the tail call against the true tail images (%)",
    "tail_recall": "TailSampler: recall of the tail call (%)",
    "tail_f1": "TailSampler: F1 of the tail call (%)",
    "noise_called_tail": "TailSampler: injected noise images called tail (count)",
    "class_size_error": "TailSampler: mean relative error of the class-size estimate (%)",
    "class_size_spearman": "TailSampler: Spearman correlation of estimated and true class sizes",
    "test_score": "test scores: mean patch score (its distance to the nearest memory row; SoftPatch: weighted)",
    "match_defect": "test scores: share of the patches whose nearest memory row is a defect cell (%)",
    "match_noise": "test scores: share of the patches whose nearest memory row is of a noise image (%)",
    "match_same_class": "test scores: share of the patches whose nearest memory row is of their own class (%)",
}


def cell_fractions(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The mean of a (H, W) mask (bool, or a defect share in [0, 1] per pixel) over each cell of a (gh, gw) grid
    laid over it: cell i spans rows floor(i H / gh) to floor((i + 1) H / gh), exactly (no resampling)."""
    height, width = mask.shape
    rows, cols = (np.arange(grid[0]) * height) // grid[0], (np.arange(grid[1]) * width) // grid[1]
    sums = np.add.reduceat(np.add.reduceat(mask.astype(np.float64), rows, axis=0), cols, axis=1)
    areas = np.diff(np.append(rows, height))[:, None] * np.diff(np.append(cols, width))[None, :]
    return (sums / areas).astype(np.float32)


def mask_on_grid(path, geometry: Geometry) -> np.ndarray:
    """A source mask on the geometry's pixel grid as the image is, soft: each pixel's defect share in [0, 1]
    after the bilinear resize (no threshold, so that a defect thinner than a pixel of the grid never vanishes)."""
    image = Image.fromarray(read_mask(path).astype(np.uint8) * 255)
    return np.asarray(geometry.apply(image, 0), dtype=np.float32) / 255.0


def patch_truth(manifest: pd.DataFrame, index: pd.DataFrame, geometry: Geometry, grid: tuple[int, int]) -> dict:
    """The truth of a split's training pool (module docstring), in manifest order: per image its category,
    class role and role; ``defect_fraction`` (n, gh, gw) float32 (0 for clean images, NaN for a noise image
    without a mask) and ``mask_known`` (n,)."""
    by_id = index.set_index("image_id")
    train = manifest[manifest["subset"] == "train"].reset_index(drop=True)
    fraction, known = _defect_fractions(train, train["role"].to_numpy() == "noise", by_id, geometry, grid)
    truth = {
        "image_ids": train["image_id"].to_numpy(dtype=str),
        "category": train["category"].to_numpy(dtype=str),
        "class_role": train["class_role"].to_numpy(dtype=str),
        "role": train["role"].to_numpy(dtype=str),
        "defect_fraction": fraction,
        "mask_known": known,
    }
    test = manifest[manifest["subset"] == "test"].reset_index(drop=True)
    defective = by_id.loc[test["image_id"], "label"].to_numpy(dtype=str) != "good"
    test_fraction, test_known = _defect_fractions(test, defective, by_id, geometry, grid)
    sizes = by_id.loc[test["image_id"], ["width", "height"]].to_numpy() if len(test) else np.zeros((0, 2), int)
    content = np.stack([geometry.valid_cells(int(w), int(h), grid) for w, h in sizes]) if len(test) else None
    truth.update(
        test_image_ids=test["image_id"].to_numpy(dtype=str),
        test_category=test["category"].to_numpy(dtype=str),
        test_class_role=test["class_role"].to_numpy(dtype=str),
        test_defective=defective,
        test_defect_fraction=test_fraction,
        test_mask_known=test_known,
        test_content=content if content is not None else np.zeros((0, *grid), dtype=bool),
    )
    return truth


def _defect_fractions(rows: pd.DataFrame, defective: np.ndarray, by_id: pd.DataFrame, geometry: Geometry, grid):
    """(defect fraction per cell (n, gh, gw): 0 for good images, NaN for a defect image without a mask; mask
    known (n,)) of the images of ``rows``."""
    fraction = np.zeros((len(rows), *grid), dtype=np.float32)
    known = np.ones(len(rows), dtype=bool)
    masks = by_id["mask_path"]
    for row in np.flatnonzero(defective):
        path = masks.get(rows.at[row, "image_id"])
        if not isinstance(path, str) or not path:
            fraction[row], known[row] = np.nan, False
            continue
        fraction[row] = cell_fractions(mask_on_grid(path, geometry), grid)
    return fraction, known


def write_patch_truth(path, truth: dict) -> None:
    from ..runtime.io import atomic_path

    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, **truth)  # mostly zeros: a few kB


def read_patch_truth(path) -> dict:
    """The truth of a split; a file written before the test images' truth holds the training pool's only."""
    from ..runtime.io import load_npz

    return load_npz(path, "patch truth", TRUTH_KEYS)


def view_truth(mask_paths: dict[int, str], geometry: Geometry, grid: tuple[int, int]):
    """``fractions(image, kind)``: the (views, gh, gw) defect fractions of the augmented views of training
    image ``image`` (a noise image with a mask), the mask taking each view's transform; cached per image."""
    from ..features.augment import mask_views

    cache: dict[tuple[int, str], np.ndarray] = {}

    def fractions(image: int, kind: str) -> np.ndarray:
        if (image, kind) not in cache:
            views = mask_views(read_mask(mask_paths[image]), geometry, kind)
            cache[image, kind] = np.stack([cell_fractions(v, grid) for v in views])
        return cache[image, kind]

    return fractions


def _percent(part, whole) -> float:
    return 100.0 * part / whole if whole else float("nan")


def _auroc_ap(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if not len(positive) or not len(negative):
        return float("nan"), float("nan")
    labels = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    scores = np.r_[positive, negative].astype(np.float64)
    return 100.0 * roc_auc_score(labels, scores), 100.0 * average_precision_score(labels, scores)


def _aligned(truth: dict, provenance: dict) -> np.ndarray:
    """For each training image of the provenance, its row in the truth (the same set of images, any order)."""
    rows = {image_id: row for row, image_id in enumerate(truth["image_ids"])}
    ids = [str(i) for i in provenance["image_ids"]]
    missing = [i for i in ids if i not in rows]
    if missing or len(ids) != len(rows):
        raise ValueError(
            f"the provenance's {len(ids)} training images are not the split's {len(rows)} "
            f"(e.g. {missing[:3]} are not in the split): was the model fitted on another split?"
        )
    return np.array([rows[i] for i in ids], dtype=np.int64)


def _scopes(truth: dict) -> dict:
    """The image sets the quantities are taken within, by (group, category): the class groups (category
    ``*``), then every category (group: its role in the split)."""
    tail = truth["class_role"] == "tail"
    scopes = {(g, ALL_CATEGORIES): m for g, m in (("tail", tail), ("head", ~tail), ("all", np.ones_like(tail)))}
    category = np.asarray(truth["category"]).astype(str)
    for name in dict.fromkeys(category):  # in the split's order
        member = category == name
        scopes["tail" if tail[member].all() else "head", str(name)] = member
    return scopes


def _sets(truth: dict) -> tuple[dict, np.ndarray, bool]:
    """(image sets by (subset, scope) for clean and noise, defect fractions (n, cells), defect truth known)."""
    clean, noise = truth["role"] == "clean", truth["role"] == "noise"
    images = {
        (s, scope): member & within
        for s, member in (("clean", clean), ("noise", noise))
        for scope, within in _scopes(truth).items()
    }
    fraction = truth["defect_fraction"].reshape(len(clean), -1)
    return images, fraction, bool(truth["mask_known"][noise].all())


def _defect(fraction: np.ndarray, subset: str) -> np.ndarray:
    fraction = np.nan_to_num(fraction, nan=0.0)
    return fraction > 0 if subset == "defect" else fraction >= 0.5


class _Rows(list):
    """Tidy rows (RUN_COLUMNS) of one fitted model."""

    def add(self, quantity: str, subset: str, scope: tuple[str, str], value: float, count: int) -> None:
        """One row; ``scope``: (group, category) as in :func:`_scopes`."""
        unit = UNITS.get(quantity, "%")
        group, category = scope
        self.append(
            dict(quantity=quantity, subset=subset, group=group, category=category, unit=unit, value=value, count=count)
        )


def run_diagnostics(
    truth: dict, provenance: dict, view_fractions: Callable | None = None, scores: dict | None = None
) -> pd.DataFrame:
    """The quantities of the module docstring for one fitted model: tidy rows (RUN_COLUMNS); ``count`` is the
    number of patches (or images) the share is taken over. ``view_fractions(image, kind)``: the defect
    fractions of a noise image's augmented views (:func:`view_truth`), needed when the bank holds them.
    ``scores``: the run's score file (image_ids, patch_scores), for the test rows when the provenance holds
    the test matches and the truth the test images."""
    rows = _Rows()
    if not provenance["memory_bank"]:
        return pd.DataFrame(rows, columns=RUN_COLUMNS)
    order = _aligned(truth, provenance)  # provenance image p is truth row order[p]
    images, fraction, masks_known = _sets(truth)
    subsets = list(SUBSETS if masks_known else SUBSETS[:2])
    pool = _bank_rows(rows, provenance, order, images=images, fraction=fraction, subsets=subsets, views=view_fractions)
    if provenance.get("filter_kept") is not None:
        _filter_rows(rows, provenance, order, pool, subsets)
    if provenance.get("tail_predicted") is not None:
        _tail_rows(rows, provenance, order, images, truth["category"])
    if scores is not None and "test_nearest" in provenance and "test_image_ids" in truth:
        defect_rows = _memory_fraction(provenance, order, images, fraction, view_fractions) if masks_known else None
        _test_rows(rows, provenance, order, truth, images=images, memory_fraction=defect_rows, scores=scores)
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def _bank_rows(rows: _Rows, provenance, order, *, images, fraction, subsets, views) -> dict:
    """Memory-bank composition; returns the pool membership (n, cells) of every (subset, group)."""
    n, cells = fraction.shape
    memory_image = order[provenance["image"]]
    memory_fraction = _memory_fraction(provenance, order, images, fraction, views) if "defect" in subsets else None
    pool = {}
    memory_rows = len(memory_image)
    for subset in subsets:
        base = "noise" if subset.startswith("defect") else subset
        for scope in [scope for kind, scope in images if kind == base]:
            member = images[base, scope]
            pool[subset, scope] = np.broadcast_to(member[:, None], (n, cells))
            in_bank = member[memory_image]
            if base != subset:
                pool[subset, scope] = pool[subset, scope] & _defect(fraction, subset)
                in_bank = in_bank & _defect(memory_fraction, subset)
            in_pool = int(pool[subset, scope].sum())
            if not in_pool:  # e.g. noise in the tail classes: no such patches, no row
                continue
            bank_share, pool_share = _percent(int(in_bank.sum()), memory_rows), _percent(in_pool, n * cells)
            rows.add("bank_share", subset, scope, bank_share, memory_rows)
            rows.add("pool_share", subset, scope, pool_share, n * cells)
            rows.add("enrichment", subset, scope, bank_share / pool_share, in_pool)
    return pool


def _memory_fraction(provenance, order, images, fraction, views) -> np.ndarray:
    """The defect fraction of the cell of every memory row (0 for clean images; a view's mask takes the view's
    transform)."""
    memory_image = order[provenance["image"]]
    memory_cell, memory_view = provenance["cell"].astype(np.int64), provenance["view"]
    memory_fraction = np.nan_to_num(fraction[memory_image, memory_cell], nan=0.0)
    for i in np.flatnonzero((memory_view > 0) & images["noise", EVERY][memory_image]):
        if views is None:
            raise ValueError("the memory bank holds views of noise images; pass view_fractions")
        fractions = views(int(memory_image[i]), provenance["view_kind"])
        memory_fraction[i] = fractions[memory_view[i] - 1].ravel()[memory_cell[i]]
    return memory_fraction


def _test_rows(rows: _Rows, provenance, order, truth: dict, *, images, memory_fraction, scores: dict) -> None:
    """The test scores: per test subset (patches of good images, of defective images, and the cells a defect
    touches when every mask is known), their mean patch score and the share whose nearest memory row is a
    defect cell, a noise image's, and of the same class."""
    position = {image_id: row for row, image_id in enumerate(truth["test_image_ids"])}
    matched_ids = [str(i) for i in provenance["test_image_ids"]]
    test_order = np.array([position[i] for i in matched_ids], dtype=np.int64)  # provenance test row -> truth row
    score_row = {str(image_id): row for row, image_id in enumerate(scores["image_ids"])}
    patch_scores = scores["patch_scores"][[score_row[i] for i in matched_ids]].reshape(len(matched_ids), -1)
    nearest = provenance["test_nearest"].reshape(len(matched_ids), -1).astype(np.int64)
    memory_image = order[provenance["image"]]
    row_noise = images["noise", EVERY][memory_image][nearest]
    row_category = np.asarray(truth["category"]).astype(str)[memory_image][nearest]
    row_defect = memory_fraction[nearest] > 0 if memory_fraction is not None else None
    defective = np.asarray(truth["test_defective"], dtype=bool)[test_order]
    category = np.asarray(truth["test_category"]).astype(str)[test_order]
    fraction = truth["test_defect_fraction"][test_order].reshape(len(test_order), -1)
    cells = fraction.shape[1]
    content = np.ones((len(test_order), cells), dtype=bool)  # pad geometry: padding cells are not scored
    if "test_content" in truth:
        content = np.asarray(truth["test_content"], dtype=bool)[test_order].reshape(len(test_order), -1)
    subsets = {"good": content & ~defective[:, None], "defective": content & defective[:, None]}
    if bool(np.asarray(truth["test_mask_known"])[test_order][defective].all()):
        subsets["defect"] = _defect(fraction, "defect") & subsets["defective"]
    scopes = _scopes({"class_role": np.asarray(truth["test_class_role"])[test_order], "category": category})
    same = row_category == category[:, None]
    for subset, member in subsets.items():
        for scope, within in scopes.items():
            chosen = member & within[:, None]
            total = int(chosen.sum())
            if not total:
                continue
            rows.add("test_score", subset, scope, float(patch_scores[chosen].mean()), total)
            if row_defect is not None:
                rows.add("match_defect", subset, scope, _percent(int(row_defect[chosen].sum()), total), total)
            rows.add("match_noise", subset, scope, _percent(int(row_noise[chosen].sum()), total), total)
            rows.add("match_same_class", subset, scope, _percent(int(same[chosen].sum()), total), total)


def _filter_rows(rows: _Rows, provenance, order, pool: dict, subsets) -> None:
    """The denoising filter: the share of each set removed; AUROC and AP of its score against clean patches."""
    n, cells = next(iter(pool.values())).shape
    kept = np.empty((n, cells), dtype=bool)
    kept[order] = provenance["filter_kept"].reshape(len(order), -1)
    score = np.empty((n, cells), dtype=np.float32)
    score[order] = provenance["filter_score"].reshape(len(order), -1)
    for (subset, scope), member in pool.items():
        total = int(member.sum())
        if total:
            rows.add("removed", subset, scope, _percent(int((member & ~kept).sum()), total), total)
    negative = score[pool["clean", EVERY]]
    for subset in subsets[1:]:
        positive = score[pool[subset, EVERY]]
        if len(positive):
            auroc, ap = _auroc_ap(positive, negative)
            rows.add("filter_auroc", subset, EVERY, auroc, len(positive))
            rows.add("filter_ap", subset, EVERY, ap, len(positive))
            chance = _percent(len(positive), len(positive) + len(negative))
            rows.add("filter_ap_chance", subset, EVERY, chance, len(positive))


def _tail_rows(rows: _Rows, provenance, order, images, category) -> None:
    """The TailSampler: its calls against the true tail images, and its class-size estimate."""
    from scipy.stats import spearmanr

    n = len(order)
    called = np.zeros(n, dtype=bool)
    called[order] = provenance["tail_predicted"]
    for (subset, scope), member in images.items():
        if member.any():
            share = _percent(int((called & member).sum()), int(member.sum()))
            rows.add("called_tail", subset, scope, share, int(member.sum()))
    true_tail = images["clean", ("tail", ALL_CATEGORIES)]
    hits = int((called & true_tail).sum())
    precision, recall = _percent(hits, int(called.sum())), _percent(hits, int(true_tail.sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    rows.add("tail_precision", "clean", EVERY, precision, int(called.sum()))
    rows.add("tail_recall", "clean", EVERY, recall, int(true_tail.sum()))
    rows.add("tail_f1", "clean", EVERY, f1, int(true_tail.sum()))
    for scope in [scope for kind, scope in images if kind == "noise"]:
        member = images["noise", scope]
        if scope == EVERY or (scope[1] != ALL_CATEGORIES and member.any()):  # a count: the groups add up
            rows.add("noise_called_tail", "noise", scope, float((called & member).sum()), int(member.sum()))
    if provenance.get("class_size_estimate") is None:
        return
    estimate = np.zeros(n, dtype=np.float64)
    estimate[order] = provenance["class_size_estimate"]
    _, inverse, sizes = np.unique(category, return_inverse=True, return_counts=True)
    true_size = sizes[inverse].astype(np.float64)  # the class's training images, noise included
    for scope in [scope for kind, scope in images if kind == "clean"]:
        member = images["clean", scope]
        if member.any():
            error = np.abs(estimate[member] - true_size[member]) / true_size[member]
            rows.add("class_size_error", "clean", scope, 100.0 * float(error.mean()), int(member.sum()))
    clean = images["clean", EVERY]
    varied = len(np.unique(true_size[clean])) > 1
    rho = float(spearmanr(estimate[clean], true_size[clean]).statistic) if varied else float("nan")
    rows.add("class_size_spearman", "clean", EVERY, rho, int(clean.sum()))


def class_group_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the class groups (tail, head, all), not of a single category."""
    return frame[frame["category"] == ALL_CATEGORIES]


def diagnostics_summary(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per cell (dataset, tail, method, quantity, subset, group): the seed statistics of the AUROC tables
    (mean, spreads over split and model seeds, 95 % interval: :func:`tailedcore.evaluation.stats.cell_statistics`)."""
    from .stats import cell_statistics

    keys = ["dataset", "tail", "method", "quantity", "subset", "group", "category", "unit"]
    rows = []
    for key, part in per_run.groupby(keys, sort=False):
        rows.append({**dict(zip(keys, key)), **cell_statistics(part, BOUNDS[key[-1]])})
    return pd.DataFrame(
        rows, columns=keys + ["mean", "std_split", "std_model", "ci_low", "ci_high", "n_seeds", "n_model_seeds"]
    )
