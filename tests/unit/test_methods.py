import numpy as np
import pytest
import torch

from tailedcore.methods.base import FeatureSet, build_method
from tailedcore.methods.patchcore import nearest_neighbour_scores


def feature_set(num=30, h=4, w=4, d=24, seed=0):
    rng = np.random.default_rng(seed)
    patches = rng.normal(size=(num, h, w, d)).astype(np.float32)
    return FeatureSet([f"img{i}" for i in range(num)], patches, rng.normal(size=(num, 16)).astype(np.float32))


def test_softpatch_weights_multiply_the_nearest_neighbours_distance():
    memory = np.array([[0.0, 0.0], [10.0, 0.0]], np.float32)
    weights = np.array([2.0, 0.5], np.float32)
    patches = np.array([[[[1.0, 0.0], [9.0, 0.0]]]], np.float32)  # (1, 1, 2, 2)
    scores = nearest_neighbour_scores(patches, memory, 1, "torch", weights)
    np.testing.assert_allclose(scores.patch_scores[0, 0], [1.0 * 2.0, 1.0 * 0.5])
    assert scores.image_scores[0] == pytest.approx(2.0)


def test_padim_scores_are_mahalanobis_distances():
    train, test = feature_set(seed=0), feature_set(num=3, seed=1)
    model = build_method("padim", {"num_channels": 8, "covariance_eps": 0.01}, torch.Generator().manual_seed(0))
    model.fit(train)
    scores = model.score(test)
    channels = model.channels
    for position in [(0, 0), (2, 3)]:
        x = train.patches[:, position[0], position[1], channels].astype(np.float64)
        mean, cov = x.mean(0), np.cov(x, rowvar=False) + 0.01 * np.eye(len(channels))
        for i in range(3):
            diff = test.patches[i, position[0], position[1], channels] - mean
            expected = np.sqrt(diff @ np.linalg.inv(cov) @ diff)
            assert scores.patch_scores[i, position[0], position[1]] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("method", ["patchcore", "softpatch", "tailedcore", "padim"])
def test_same_seed_same_scores(method):
    train, test = feature_set(), feature_set(num=4, seed=2)
    options = {"tail_augmentation": "none"} if method == "tailedcore" else {}
    runs = []
    for _ in range(2):
        model = build_method(method, dict(options), torch.Generator().manual_seed(3))
        model.fit(train)
        runs.append(model.score(test))
    np.testing.assert_array_equal(runs[0].patch_scores, runs[1].patch_scores)
    np.testing.assert_array_equal(runs[0].image_scores, runs[1].image_scores)


def test_tailedcore_memory_is_tail_bank_plus_clean_bank_with_augmented_views():
    train = feature_set(num=40)
    calls = []

    def augment(rows, kind):
        calls.append((list(rows), kind))
        return np.repeat(train.patches[rows], 7, axis=0)

    train.augment = augment
    model = build_method("tailedcore", {"tail_augmentation": "rotflip"}, torch.Generator().manual_seed(0))
    report = model.fit(train)
    assert calls and calls[0][1] == "rotflip"
    assert report["tail_patches"] == len(calls[0][0]) * 8 * 16  # identity + 7 views, 16 patches each
    assert report["memory_size"] == report["tail_memory_size"] + report["clean_memory_size"]
    assert report["clean_memory_size"] == int(0.1 * report["lof_kept_patches"])


def test_unknown_options_are_errors_not_ignored():
    with pytest.raises(ValueError, match=r"unknown options \['coreset_ratoi'\]"):
        build_method("patchcore", {"coreset_ratoi": 0.1}, torch.Generator())
    with pytest.raises(ValueError, match="unknown method"):
        build_method("winclip", {}, torch.Generator())
