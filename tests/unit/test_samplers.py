import numpy as np
import pytest
import torch
from sklearn.neighbors import LocalOutlierFactor

from tailedcore.samplers.lof import local_outlier_factor, lof_keep_mask, positionwise_lof
from tailedcore.samplers.tail import TailSamplerConfig, class_size_list, estimate_tail, tail_cut


def clusters(sizes, dim=64, spread=0.05, seed=0):
    """Well-separated clusters on the unit sphere with known sizes; returns (embeddings, class labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = [centres[c] + spread * rng.normal(size=(n, dim)) / np.sqrt(dim) for c, n in enumerate(sizes)]
    return np.concatenate(points), np.repeat(np.arange(len(sizes)), sizes)


@pytest.mark.parametrize("vote", ["reverse", "forward"])
def test_tail_sampler_finds_exactly_the_tail_images(vote):
    embeddings, labels = clusters((300, 200, 4, 1))
    estimate = estimate_tail(embeddings, TailSamplerConfig(vote=vote))
    assert estimate.size_list == [300, 200, 4, 1]
    assert estimate.elbow == estimate.cap == estimate.cut == 4
    np.testing.assert_array_equal(np.flatnonzero(estimate.tail_mask), np.flatnonzero(labels >= 2))


def test_tail_sampler_mass_cap_binds():
    embeddings, labels = clusters((400, 60, 50, 40, 30, 20, 3), seed=1)
    estimate = estimate_tail(embeddings)
    assert estimate.size_list == [400, 60, 50, 40, 30, 20, 3]
    assert estimate.elbow == 60 and estimate.cap == 30 and estimate.cut == 30  # 3 + 20 + 30 <= 0.15 * 603
    np.testing.assert_array_equal(np.flatnonzero(estimate.tail_mask), np.flatnonzero(labels >= 4))


def test_class_size_list_and_cut_by_hand():
    # kappa: 3 images say 3, 2 images say 1 -> eta = [3, 1, 1]
    assert class_size_list(np.array([3.0, 3, 3, 1, 1])) == [3, 1, 1]
    # a remainder smaller than its first entry joins the last size
    assert class_size_list(np.array([2.0, 5, 5, 5])) == [4]
    assert tail_cut([10, 10], 0.15) == (10, 10)
    assert tail_cut([100, 50, 5, 1], 0.15) == (5, 5)


def test_lof_matches_scikit_learn():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 8))
    ours = local_outlier_factor(torch.from_numpy(points)[None], 6)[0].numpy()
    reference = -LocalOutlierFactor(n_neighbors=6).fit(points).negative_outlier_factor_
    np.testing.assert_allclose(ours, reference, rtol=1e-6)


def test_positionwise_lof_removes_planted_outliers_first():
    rng = np.random.default_rng(1)
    patches = rng.normal(size=(40, 3, 3, 32)).astype(np.float32)
    planted = [(5, 0, 1), (17, 2, 2), (33, 1, 0)]
    for image, y, x in planted:
        patches[image, y, x] += 12.0
    scores = positionwise_lof(patches, 6, 16, torch.Generator().manual_seed(0))
    top = np.argsort(scores.ravel())[::-1][:3]
    assert sorted(np.unravel_index(top, scores.shape)[0].tolist()) == [5, 17, 33]
    keep = lof_keep_mask(scores, 0.85)
    assert not any(keep[i, y, x] for i, y, x in planted)
    assert abs(keep.mean() - 0.85) < 0.01


def test_vectorised_tail_sampler_equals_the_per_row_reference():
    """The vectorised neighbourhoods and reverse vote give exactly the per-row loop's output (VisA-like
    long tail with noise in the embeddings, so thresholds fall inside clusters, not only between them)."""
    from bench.reference import tail_neighbourhoods_per_row
    from tailedcore.samplers.tail import _mode_per_row, adaptive_neighbourhoods, similarity_matrix

    embeddings, _ = clusters((250, 120, 60, 30, 12, 5, 2, 1), dim=32, spread=0.6, seed=5)
    member = adaptive_neighbourhoods(similarity_matrix(embeddings), 0.85, True)
    kappa = _mode_per_row(member.sum(axis=1), member.T)
    ref_member, ref_kappa = tail_neighbourhoods_per_row(embeddings)
    np.testing.assert_array_equal(member, ref_member)
    np.testing.assert_array_equal(kappa, ref_kappa)
    assert len(np.unique(kappa)) > 4  # a non-trivial vote


def test_batched_lof_equals_scikit_learn_per_position():
    from bench.reference import lof_sklearn

    by_position = np.random.default_rng(2).normal(size=(5, 60, 16))
    ours = local_outlier_factor(torch.from_numpy(by_position), 6).numpy()
    np.testing.assert_allclose(ours, lof_sklearn(by_position, 6), rtol=1e-6)
