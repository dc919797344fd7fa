import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from sklearn.metrics import roc_auc_score

from tailedcore.metrics import anomaly_maps, auroc


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
