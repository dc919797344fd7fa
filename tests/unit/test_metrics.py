import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from sklearn.metrics import roc_auc_score

from tailedcore.evaluation.metrics import anomaly_maps, auroc


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(500) < 0.3
    scores = np.round(rng.normal(size=500) + labels, 1)  # rounding makes many ties
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auroc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        auroc(np.zeros(4, bool), np.arange(4.0))


def test_anomaly_maps_upsample_then_gaussian():
    rng = np.random.default_rng(0)
    grid = rng.random((2, 4, 4)).astype(np.float32)
    maps = anomaly_maps(grid, 16, 4.0)
    # bilinear, align_corners=False: output pixel centres map to (i + 0.5) / 4 - 0.5 in the grid
    coords = np.clip((np.arange(16) + 0.5) / 4 - 0.5, 0, 3)
    lo = np.floor(coords).astype(int)
    hi = np.minimum(lo + 1, 3)
    w = coords - lo
    rows = grid[:, lo] * (1 - w)[None, :, None] + grid[:, hi] * w[None, :, None]
    up = rows[:, :, lo] * (1 - w)[None, None, :] + rows[:, :, hi] * w[None, None, :]
    expected = np.stack([gaussian_filter(m, sigma=4.0) for m in up])
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)


def reference_aupro(masks, maps, limit=0.3):
    """Straightforward AUPRO: loop over thresholds, label regions with scikit-image, integrate the curve."""
    from skimage.measure import label

    regions = [
        (i, label(m, connectivity=2) == r)
        for i, m in enumerate(masks)
        for r in range(1, label(m, connectivity=2).max() + 1)
    ]
    negatives = ~masks
    points = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        above = maps >= t
        fpr = (above & negatives).sum() / negatives.sum()
        pro = np.mean([above[i][region].mean() for i, region in regions])
        points.append((fpr, pro))
    fpr, pro = np.array(points).T
    keep = fpr <= limit
    end = np.interp(limit, fpr, pro)
    return np.trapezoid(np.r_[pro[keep], end], np.r_[fpr[keep], limit]) / limit


@pytest.mark.parametrize("seed", range(3))
def test_aupro_matches_a_straightforward_reference(seed):
    from tailedcore.evaluation.metrics import aupro

    rng = np.random.default_rng(seed)
    masks = np.zeros((3, 16, 16), bool)
    masks[0, 2:5, 2:6] = True
    masks[0, 10:14, 9:11] = True  # two regions in one image, of different sizes
    masks[1, 6:9, 6:9] = True  # image 2 has no defect
    maps = np.round(rng.random(masks.shape) + 0.8 * masks, 2)  # rounded: many ties
    assert aupro(masks, maps) == pytest.approx(reference_aupro(masks, maps), abs=1e-9)


def test_f1_max_and_average_precision():
    from sklearn.metrics import average_precision_score

    from tailedcore.evaluation.metrics import f1_max, pixel_metrics

    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    # top 4 by score hold all 3 anomalies and 1 normal: P = 3/4, R = 1, F1 = 6/7 (the best cut)
    assert f1_max(labels, scores) == pytest.approx(6 / 7)
    ap = pixel_metrics(labels.astype(bool).reshape(1, 1, -1), scores.reshape(1, 1, -1), extra=True)["ap"]
    assert ap == pytest.approx(average_precision_score(labels, scores))


@pytest.mark.parametrize("seed", [0, 1])
def test_pixel_metrics_from_one_sort_equal_scikit_learn(seed):
    from sklearn.metrics import average_precision_score, roc_auc_score

    from tailedcore.evaluation.metrics import pixel_metrics

    rng = np.random.default_rng(seed)
    truth = np.zeros((4, 20, 20), bool)
    truth[1, 3:8, 4:9] = truth[2, 10:12, 0:15] = True
    maps = np.round(rng.normal(size=truth.shape) + 1.5 * truth, 1)  # rounded: many ties
    valid = np.ones_like(truth)
    valid[:, :, :3] = False  # padding columns: left out of every pixel metric
    ours = pixel_metrics(truth, maps, valid, extra=True)
    assert ours["auroc"] == pytest.approx(roc_auc_score(truth[valid], maps[valid]), abs=1e-12)
    assert ours["ap"] == pytest.approx(average_precision_score(truth[valid], maps[valid]), abs=1e-12)
    everything = pixel_metrics(truth, maps, extra=True)
    assert everything["auroc"] == pytest.approx(roc_auc_score(truth.ravel(), maps.ravel()), abs=1e-12)
    assert everything["aupro"] == pytest.approx(reference_aupro(truth, maps), abs=1e-9)
