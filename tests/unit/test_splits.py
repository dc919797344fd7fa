import numpy as np
import pandas as pd
import pytest

from tailedcore.data.longtail import SplitRules, generate_split, pareto_profile, split_statistics, tail_kind

# MVTec AD train/good counts and test defect counts (docs/protocol.md §1.1)
MVTEC_TRAIN = dict(
    bottle=209,
    cable=224,
    capsule=219,
    carpet=280,
    grid=264,
    hazelnut=391,
    leather=245,
    metal_nut=220,
    pill=267,
    screw=320,
    tile=230,
    toothbrush=60,
    transistor=213,
    wood=247,
    zipper=240,
)
MVTEC_DEFECTS = dict(
    bottle=63,
    cable=92,
    capsule=109,
    carpet=89,
    grid=57,
    hazelnut=70,
    leather=92,
    metal_nut=93,
    pill=141,
    screw=119,
    tile=84,
    toothbrush=30,
    transistor=40,
    wood=60,
    zipper=119,
)


def fake_index(train_counts, defect_counts, good_test=5):
    rows = []
    for category, n in train_counts.items():
        rows += [(f"{category}/train/good/{i:03d}", category, "train", "good") for i in range(n)]
        rows += [(f"{category}/test/good/{i:03d}", category, "test", "good") for i in range(good_test)]
        rows += [(f"{category}/test/crack/{i:03d}", category, "test", "crack") for i in range(defect_counts[category])]
    frame = pd.DataFrame(rows, columns=["image_id", "category", "split", "label"])
    frame["image_path"] = frame["mask_path"] = ""
    return frame


@pytest.fixture(scope="module")
def mvtec_index():
    return fake_index(MVTEC_TRAIN, MVTEC_DEFECTS)


def test_pareto_profile_matches_the_spec():
    np.testing.assert_allclose(
        pareto_profile(15, 6, 0.01),
        [
            1,
            0.60611,
            0.37990,
            0.24520,
            0.16240,
            0.11006,
            0.07613,
            0.05365,
            0.03844,
            0.02796,
            0.02063,
            0.01541,
            0.01165,
            0.00890,
            0.00687,
        ],
        atol=5e-6,
    )
    np.testing.assert_allclose(
        pareto_profile(12, 6, 0.01),
        [1, 0.54005, 0.30663, 0.18166, 0.11163, 0.07081, 0.04619, 0.03088, 0.02110, 0.01471, 0.01043, 0.00752],
        atol=5e-6,
    )


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_step_k_counts(mvtec_index, k, seed):
    manifest = generate_split(mvtec_index, f"step_k{k}", seed, SplitRules(noise_ratio=0.1))
    stats = split_statistics(manifest, mvtec_index).set_index("category")
    tails = stats[stats["class_role"] == "tail"]
    heads = stats[stats["class_role"] == "head"]
    assert len(tails) == 9 and len(heads) == 6  # round(0.6 * 15)
    assert (tails["n_train_clean"] == k).all() and (tails["n_train_noise"] == 0).all()
    for category, row in heads.iterrows():
        assert row["n_train_clean"] == MVTEC_TRAIN[category]
        assert row["n_train_noise"] == round(0.1 * MVTEC_TRAIN[category])  # Python round: leather 245 -> 24
    # the paper's protocol: the whole test split, injected images marked as leaked
    assert (stats["n_test"] == pd.Series(MVTEC_DEFECTS) + 5).all()
    assert (stats["n_test_leaked"] == stats["n_train_noise"]).all()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_pareto_counts(mvtec_index, seed):
    manifest = generate_split(mvtec_index, "pareto", seed, SplitRules(noise_ratio=0.1))
    stats = split_statistics(manifest, mvtec_index).set_index("category")
    sizes = stats["n_train_clean"]
    assert (sizes >= 5).all() and all(sizes[c] <= MVTEC_TRAIN[c] for c in sizes.index)
    assert any(sizes[c] == MVTEC_TRAIN[c] for c in sizes.index)  # the largest class keeps everything
    assert ((sizes < 20) == (stats["class_role"] == "tail")).all()
    assert stats.loc[stats["class_role"] == "tail", "n_train_noise"].sum() == 0
    assert stats["n_train_noise"].sum() == round(0.1 * sizes.sum())


def test_noise_images_are_test_defects_of_their_own_class(mvtec_index):
    manifest = generate_split(mvtec_index, "step_k1", 7, SplitRules(noise_ratio=0.1))
    labels = mvtec_index.set_index("image_id")
    noise = manifest[manifest["role"] == "noise"]
    assert (labels.loc[noise["image_id"], "split"] == "test").all()
    assert (labels.loc[noise["image_id"], "label"] != "good").all()
    assert (labels.loc[noise["image_id"], "category"].to_numpy() == noise["category"].to_numpy()).all()


def test_split_is_deterministic_and_seed_dependent(mvtec_index):
    rules = SplitRules(noise_ratio=0.1)
    a = generate_split(mvtec_index, "pareto", 1, rules)
    assert a.equals(generate_split(mvtec_index, "pareto", 1, rules))
    assert not a.equals(generate_split(mvtec_index, "pareto", 2, rules))


def test_excluding_injected_images_from_test(mvtec_index):
    manifest = generate_split(mvtec_index, "step_k4", 1, SplitRules(noise_ratio=0.1, exclude_injected_from_test=True))
    noise = set(manifest.loc[manifest["role"] == "noise", "image_id"])
    test = set(manifest.loc[manifest["subset"] == "test", "image_id"])
    assert noise and not noise & test
    assert len(test) == len(mvtec_index[mvtec_index["split"] == "test"]) - len(noise)


def test_zero_noise_and_bad_tail_names(mvtec_index):
    manifest = generate_split(mvtec_index, "step_k1", 1, SplitRules(noise_ratio=0.0))
    assert not (manifest["role"] == "noise").any()
    with pytest.raises(ValueError, match="unknown tail type"):
        tail_kind("step_k0")
