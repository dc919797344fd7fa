"""Pixel metrics at the data's own resolution (``evaluation.resolution: native``), exact and in bounded memory.

An anomaly map on the model's grid is taken back through the inverse of the geometry onto the mask's own
pixels: the padding of ``pad`` is cut off, ``resize`` is undone, and for ``crop`` the pixels the model never
saw (outside the centre crop) get the image's lowest score, so that a defect cut away by the crop counts as
missed rather than absent. The masks are read as they are, so no defect pixel is ever lost.

Native resolution means hundreds of millions of pixels. The metrics are still exact: the defect pixels
(always the minority) are held with their scores and region ids, sorted once; the defect-free pixels are
streamed image by image and only counted against the distinct defect scores (a tie counts as a tie). From
these counts follow the ROC, precision-recall and PRO curves at every distinct score, as one sort of all
pixels gives them (:func:`tailedcore.evaluation.metrics.pixel_metrics`). Memory: about 16 bytes per defect pixel and
the maps of one image, whatever the number of defect-free pixels.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import label as connected_components

from ..data.images import Geometry, read_mask


def _linear_weights(source: np.ndarray, size_in: int) -> np.ndarray:
    """(len(source), size_in) weights of linear interpolation at the (non-negative) positions ``source``;
    positions past the last pixel take the last pixel."""
    low = np.minimum(np.floor(source).astype(int), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    frac = source - low
    weights = np.zeros((len(source), size_in))
    np.add.at(weights, (np.arange(len(source)), low), 1.0 - frac)
    np.add.at(weights, (np.arange(len(source)), high), frac)
    return weights


def bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of bilinear resizing with align_corners=False (PyTorch's rule)."""
    return _linear_weights(np.maximum((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0.0), size_in)


def _inverse(native: int, resized: int, offset: int, kept: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear weights (native, kept) from ``kept`` map pixels that start at ``offset`` of a ``resized``-long
    image back to its ``native`` pixels, and which native pixels the map covers (their centre falls on it)."""
    centre = (np.arange(native) + 0.5) * resized / native  # in resized pixels
    inside = (centre >= offset) & (centre < offset + kept)
    return _linear_weights(np.clip(centre - 0.5 - offset, 0.0, kept - 1), kept), inside


def native_map(model_map: np.ndarray, geometry: Geometry, width: int, height: int) -> np.ndarray:
    """The (height, width) map of an image of that size (EXIF orientation applied, as the index gives it, or
    its mask's own size) from its map on the geometry's grid. ``pad``: the padding cut off; ``resize``:
    stretched back; ``crop``: what lies outside the crop gets the image's lowest score."""
    new, (left, top, right, bottom) = geometry.layout(width, height)
    if geometry.mode == "crop":  # the crop box of the resized image
        content, offsets, kept = model_map, (top, left), (geometry.crop, geometry.crop)
    else:  # pad: the pasted image (the padding cut off); resize: the whole grid (its box)
        content, offsets, kept = model_map[top:bottom, left:right], (0, 0), (new[1], new[0])
    rows, inside_rows = _inverse(height, new[1], offsets[0], kept[0])
    cols, inside_cols = _inverse(width, new[0], offsets[1], kept[1])
    out = (rows @ np.asarray(content, dtype=np.float64) @ cols.T).astype(np.float32)
    if not (inside_rows.all() and inside_cols.all()):
        out[~(inside_rows[:, None] & inside_cols[None, :])] = content.min()
    return out


class PixelCounter:
    """Exact pixel AUROC, AP and AUPRO over images streamed one at a time, in two passes: ``add_defects`` for
    the defect pixels of every image with a mask, then ``add_normals`` for the defect-free pixels of every
    image (after ``freeze``). Equal to :func:`tailedcore.evaluation.metrics.pixel_metrics` on the concatenated
    pixels."""

    def __init__(self):
        self._scores, self._regions, self._sizes = [], [], []
        self.frozen = False

    def add_defects(self, scores: np.ndarray, mask: np.ndarray) -> None:
        """The defect pixels of one image (its map and bool mask of one shape), with their connected regions
        (8-connectivity)."""
        if self.frozen:
            raise RuntimeError("add_defects after freeze")
        labelled, count = connected_components(mask, structure=np.ones((3, 3)))
        if count == 0:
            return
        inside = labelled[mask]
        self._scores.append(np.asarray(scores, dtype=np.float32)[mask])
        self._regions.append((inside - 1 + sum(len(s) for s in self._sizes)).astype(np.int64))
        self._sizes.append(np.bincount(inside, minlength=count + 1)[1:])

    def freeze(self) -> None:
        """Sort the defect scores once: the distinct values, their counts and their PRO weights."""
        scores = np.concatenate(self._scores) if self._scores else np.empty(0, np.float32)
        regions = np.concatenate(self._regions) if self._regions else np.empty(0, np.int64)
        sizes = np.concatenate(self._sizes) if self._sizes else np.empty(0, np.int64)
        self._scores = self._regions = self._sizes = None
        self.values, inverse, self.counts = np.unique(scores, return_inverse=True, return_counts=True)
        self.regions = len(sizes)
        weights = 1.0 / (sizes[regions] * max(self.regions, 1)) if len(regions) else np.empty(0)
        self.weights = np.bincount(inverse, weights=weights, minlength=len(self.values))
        self.ties = np.zeros(len(self.values), np.int64)  # defect-free pixels equal to each distinct value
        self.between = np.zeros(len(self.values) + 1, np.int64)  # strictly between consecutive values
        self.frozen = True

    def add_normals(self, scores: np.ndarray) -> None:
        """Defect-free pixels (any shape): counted against the distinct defect scores."""
        if not self.frozen:
            raise RuntimeError("add_normals before freeze")
        scores = np.asarray(scores, dtype=np.float32).ravel()
        slot = np.searchsorted(self.values, scores, side="left")
        tie = np.zeros(len(scores), bool)
        found = slot < len(self.values)
        tie[found] = self.values[slot[found]] == scores[found]
        self.ties += np.bincount(slot[tie], minlength=len(self.values))
        self.between += np.bincount(slot[~tie], minlength=len(self.values) + 1)

    def result(self, extra: bool = False, fpr_limit: float = 0.3) -> dict[str, float]:
        """The metrics from the counts: the curves at every distinct score, from the highest down."""
        positives, negatives = int(self.counts.sum()), int(self.ties.sum() + self.between.sum())
        if positives == 0 or negatives == 0:
            raise ValueError(f"pixel metrics need both classes (got {positives} defect, {negatives} normal pixels)")
        # descending: the normal pixels above the top defect value, then per value (high to low) its ties
        # together with its defect pixels, then the normal pixels down to the next value
        down = slice(None, None, -1)
        counts, ties, weights = self.counts[down], self.ties[down], self.weights[down]
        below = self.between[down]  # below[0]: above the top value; below[j + 1]: under value j (descending)
        fps_at = np.cumsum(below[:-1]) + np.cumsum(ties)  # normal pixels >= each value
        tps_at = np.cumsum(counts)
        # every curve point: after the run of normal pixels above a value, and after the value itself
        fps = np.empty(2 * len(counts) + 1, np.int64)
        tps = np.empty_like(fps)
        fps[0:-1:2], fps[1::2], fps[-1] = fps_at - ties, fps_at, negatives
        tps[0:-1:2], tps[1::2], tps[-1] = tps_at - counts, tps_at, positives
        tpr, fpr = np.r_[0.0, tps / positives], np.r_[0.0, fps / negatives]
        result = {"auroc": float(np.trapezoid(tpr, fpr))}
        if extra:
            result["ap"] = float(np.sum(counts / positives * tps_at / (tps_at + fps_at)))
            if self.regions == 0:
                raise ValueError("AUPRO needs at least one defect region and one defect-free pixel")
            pro_at = np.cumsum(weights)
            pro = np.empty(2 * len(counts) + 1)
            pro[0:-1:2], pro[1::2], pro[-1] = pro_at - weights, pro_at, pro_at[-1]
            result["aupro"] = _area_to(np.r_[0.0, fps / negatives], np.r_[0.0, pro], fpr_limit)
        return result


def native_pixel_metrics(
    labels: list[str], mask_paths: list[str], sizes, maps: np.ndarray, *, geometry: Geometry, extra: bool = False
) -> dict[str, float]:
    """Pixel AUROC (with ``extra`` also AP and AUPRO) of one category at each mask's own resolution: every map
    (on the geometry's grid) taken back through the inverse geometry, in two passes over the images (their
    defect pixels, then their defect-free ones); an image without a mask at its size ``sizes[i]`` (w, h)."""
    defective = [i for i, label in enumerate(labels) if label != "good"]
    with_mask = set(defective)
    counter = PixelCounter()

    def native(i: int, mask: np.ndarray | None) -> np.ndarray:
        height, width = mask.shape if mask is not None else (int(sizes[i][1]), int(sizes[i][0]))
        return native_map(maps[i], geometry, width, height)

    for i in defective:
        mask = read_mask(mask_paths[i])
        counter.add_defects(native(i, mask), mask)
    counter.freeze()
    if counter.regions == 0:  # no defect pixel in any mask: pixel metrics are undefined, not zero
        return {"auroc": float("nan"), "ap": float("nan"), "aupro": float("nan")}
    for i in range(len(labels)):
        mask = read_mask(mask_paths[i]) if i in with_mask else None
        scores = native(i, mask)
        counter.add_normals(scores if mask is None else scores[~mask])
    return counter.result(extra=extra, fpr_limit=0.3)


def _area_to(fpr: np.ndarray, pro: np.ndarray, fpr_limit: float) -> float:
    """Normalised area under a PRO curve up to ``fpr_limit`` (the curve cut at the limit by interpolation)."""
    keep = fpr <= fpr_limit
    end = np.interp(fpr_limit, fpr, pro)
    return float(np.trapezoid(np.r_[pro[keep], end], np.r_[fpr[keep], fpr_limit]) / fpr_limit)
