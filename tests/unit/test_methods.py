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


def test_tailedcore_without_filter_and_tail_sampler_is_patchcore():
    """The ablation switches compose to the plain coreset: no filter, no tail branch = PatchCore's bank."""
    train = feature_set(num=40)
    patchcore = build_method("patchcore", {}, torch.Generator().manual_seed(5))
    patchcore.fit(train)
    bare = build_method("tailedcore", {"denoise": False, "tail_mode": "none"}, torch.Generator().manual_seed(5))
    report = bare.fit(train)
    np.testing.assert_array_equal(bare.memory, patchcore.memory)
    assert report["lof_dropped_patches"] == 0 and bare.provenance.filter_kept is None


def test_tailedcore_filtered_tail_branch_keeps_only_the_patches_the_filter_kept():
    train = feature_set(num=40)
    options = {"tail_augmentation": "none", "tail_mass_cap": 0.5, "tail_cut": "cap"}
    plain = build_method("tailedcore", options, torch.Generator().manual_seed(0))
    plain_report = plain.fit(train)
    model = build_method("tailedcore", {**options, "tail_filter": True}, torch.Generator().manual_seed(0))
    report = model.fit(train)
    prov = model.provenance
    tail_rows = report["tail_memory_size"]
    kept = prov.filter_kept.reshape(len(train.image_ids), -1)
    assert kept[prov.image[:tail_rows], prov.cell[:tail_rows]].all()  # every tail-bank row passed the filter
    dropped_in_tail = (~kept[[train.image_ids.index(i) for i in report["predicted_tail_images"]]]).sum()
    assert dropped_in_tail > 0  # the test means something: the filter dropped some tail patches
    assert report["tail_patches"] == plain_report["tail_patches"] - dropped_in_tail
    # the clean bank does not change: same filter, same RNG order
    np.testing.assert_array_equal(model.memory[tail_rows:], plain.memory[plain_report["tail_memory_size"] :])


@pytest.mark.parametrize("cut", ["elbow", "cap"])
def test_tail_cut_rule_picks_the_elbow_or_the_cap(cut):
    train = feature_set(num=40)
    model = build_method("tailedcore", {"tail_augmentation": "none", "tail_cut": cut}, torch.Generator().manual_seed(0))
    report = model.fit(train)
    assert report["tail_cut"] == report[f"tail_{cut}"]


def test_filtered_tail_branch_needs_the_filter():
    with pytest.raises(ValueError, match="tail_filter: true needs the filter"):
        build_method("tailedcore", {"tail_filter": True, "denoise": False}, torch.Generator())


def test_shared_parts_give_the_same_bank_and_are_reused_across_methods(tmp_path):
    """SoftPatch computes the filter and the filtered coreset; TailedCore reads both back and ends with the same
    bytes as a fit that computed everything; a changed option computes its part again."""
    from tailedcore.runtime.reuse import FitParts

    def fit(method, options, parts):
        train = feature_set(num=40)
        train.parts = parts
        model = build_method(
            method,
            {"tail_augmentation": "none", **options} if method == "tailedcore" else options,
            torch.Generator().manual_seed(4),
        )
        model.fit(train)
        return model

    alone = fit("tailedcore", {}, None)
    first = FitParts(tmp_path, {"images": "same"})
    fit("softpatch", {}, first)
    assert first.reused == {}
    shared = FitParts(tmp_path, {"images": "same"})
    model = fit("tailedcore", {}, shared)
    assert sorted(shared.reused) == ["coreset", "filter"]
    np.testing.assert_array_equal(model.memory, alone.memory)
    np.testing.assert_array_equal(model.provenance.filter_score, alone.provenance.filter_score)
    other = FitParts(tmp_path, {"images": "same"})
    fit("tailedcore", {"lof_k": 5}, other)  # another filter: nothing to reuse
    assert other.reused == {}
    elsewhere = FitParts(tmp_path, {"images": "other"})  # other training data: nothing to reuse
    fit("tailedcore", {}, elsewhere)
    assert elsewhere.reused == {}
    bare = FitParts(tmp_path, {"images": "same"})
    fit("patchcore", {}, bare)
    unfiltered = FitParts(tmp_path, {"images": "same"})
    without = fit("tailedcore", {"denoise": False, "tail_mode": "none"}, unfiltered)
    assert unfiltered.reused.keys() == {"coreset"}  # PatchCore's coreset is TailedCore's without its filter
    np.testing.assert_array_equal(without.memory, fit("patchcore", {}, None).memory)


def test_a_damaged_shared_part_is_computed_again(tmp_path):
    from tailedcore.runtime.reuse import FitParts

    parts = FitParts(tmp_path, {"images": 1})
    generator = torch.Generator().manual_seed(0)
    value = parts("filter", {}, generator, lambda: torch.rand(3, generator=generator).numpy())
    (stored,) = tmp_path.glob("filter-*.npz")
    stored.write_bytes(b"not an npz")
    again = FitParts(tmp_path, {"images": 1})
    generator = torch.Generator().manual_seed(0)
    np.testing.assert_array_equal(
        again("filter", {}, generator, lambda: torch.rand(3, generator=generator).numpy()), value
    )
    assert again.reused == {}


def test_a_tail_branch_the_filter_empties_leaves_s_clean_only(monkeypatch):
    from tailedcore.methods import tailedcore as module
    from tailedcore.samplers.tail import TailEstimate

    train = feature_set(num=40)
    train.patches[:5] += 25.0  # five far-off images, every patch an outlier to the position-wise LOF
    called = np.arange(40) < 5  # the TailSampler calls exactly those five tail

    def estimate(embeddings, config):
        return TailEstimate(np.where(called, 5.0, 35.0), [35, 5], 5, 5, 5, called)

    monkeypatch.setattr(module, "estimate_tail", estimate)
    options = {"tail_augmentation": "none", "tail_filter": True}
    model = build_method("tailedcore", options, torch.Generator().manual_seed(0))
    report = model.fit(train)
    assert report["predicted_tail_images"] == [f"img{i}" for i in range(5)]
    assert report["tail_patches"] == 0 and report["tail_memory_size"] == 0  # the filter dropped all 80
    assert report["memory_size"] == report["clean_memory_size"] == len(model.memory)
