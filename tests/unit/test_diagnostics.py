"""Diagnostics of the tail-versus-noise trade-off: the provenance of every memory row is where the row came from,
the patch truth is the mask on the feature grid, and every diagnostic equals a direct recount from the provenance
and the split's truth."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tailedcore.data.images import Geometry
from tailedcore.evaluation.diagnostics import cell_fractions, diagnostics_summary, patch_truth, run_diagnostics
from tailedcore.features.augment import mask_views, tail_views
from tailedcore.methods.base import FeatureSet, Provenance, build_method
from tailedcore.scores import read_provenance, write_provenance


def clustered_pool(num=36, h=4, w=4, d=12, seed=0):
    """Three classes of 24, 8 and 4 images (distinct global embeddings), patches near their class's centre."""
    rng = np.random.default_rng(seed)
    sizes = [24, 8, num - 32]
    labels = np.repeat(np.arange(3), sizes)
    centres = rng.normal(scale=4.0, size=(3, 16))
    embeddings = (centres[labels] + rng.normal(scale=0.3, size=(num, 16))).astype(np.float32)
    patches = (rng.normal(size=(num, h, w, d)) + labels[:, None, None, None]).astype(np.float32)
    return FeatureSet([f"img{i}" for i in range(num)], patches, embeddings), labels


def views_of(patches):
    """A deterministic stand-in for the backbone's views: 3 per image, each a different transform."""

    def augment(rows, kind):
        base = patches[rows]
        views = [np.rot90(base, 2, axes=(1, 2)), base[:, ::-1] * 2.0, base + 100.0]
        return np.ascontiguousarray(np.stack(views, axis=1).reshape(-1, *base.shape[1:]))

    return augment


@pytest.mark.parametrize("method", ["patchcore", "softpatch", "tailedcore"])
def test_every_memory_row_is_the_patch_its_provenance_names(method):
    train, _ = clustered_pool()
    train.augment = views_of(train.patches)
    options = (
        {"coreset_ratio": 0.25, "tail_augmentation": "rotflip"} if method == "tailedcore" else {"coreset_ratio": 0.25}
    )
    model = build_method(method, options, torch.Generator().manual_seed(0))
    report = model.fit(train)
    origin = model.provenance
    assert len(origin.image) == len(model.memory)
    h, w = train.patches.shape[1:3]
    for row in range(len(model.memory)):
        image, cell, view = int(origin.image[row]), int(origin.cell[row]), int(origin.view[row])
        source = train.patches[image] if view == 0 else train.augment([image], "rotflip")[view - 1]
        np.testing.assert_array_equal(model.memory[row], source[cell // w, cell % w])
    if method == "tailedcore":
        assert (origin.view > 0).any() and origin.view_kind == "rotflip"
        assert origin.tail_predicted.sum() > 0
    if method != "patchcore":  # the filter's decisions: the denoised bank holds kept patches only
        assert origin.filter_kept.shape == train.patches.shape[:3]
        assert origin.filter_kept.sum() == report["lof_kept_patches"]
        denoised = slice(-report.get("clean_memory_size", len(origin.image)), None)
        rows = origin.image[denoised].astype(int) * h * w + origin.cell[denoised]
        assert np.isin(rows, np.flatnonzero(origin.filter_kept.ravel())).all()


def test_padim_has_no_memory_bank_and_no_diagnostics():
    train, _ = clustered_pool()
    model = build_method("padim", {"num_channels": 8}, torch.Generator().manual_seed(0))
    model.fit(train)
    assert model.provenance.memory_bank is False
    truth = known_truth(np.random.default_rng(0))
    provenance = {"image_ids": truth["image_ids"], "memory_bank": False, "image": np.zeros(0, int)}
    assert run_diagnostics(truth, provenance).empty


def test_provenance_file_round_trip_and_checks(tmp_path):
    kept = np.random.default_rng(0).random((5, 3, 4)) > 0.3
    origin = Provenance(
        np.array([0, 4, 2]),
        np.array([11, 0, 5]),
        np.array([0, 0, 2], np.int16),
        view_kind="rotflip",
        filter_score=np.random.default_rng(1).random((5, 3, 4)).astype(np.float32),
        filter_kept=kept,
    )
    path = tmp_path / "m.bank.npz"
    write_provenance(path, origin, image_ids=[f"i{k}" for k in range(5)], grid=(3, 4))
    back = read_provenance(path)
    np.testing.assert_array_equal(back["filter_kept"], kept)
    np.testing.assert_array_equal(back["view"], [0, 0, 2])
    assert back["view_kind"] == "rotflip" and back["grid"] == (3, 4) and back["memory_bank"]
    bad = Provenance(np.array([5]), np.array([12]), np.array([0], np.int16))
    with pytest.raises(ValueError, match="outside the 5 training images"):
        write_provenance(tmp_path / "bad.npz", bad, image_ids=[f"i{k}" for k in range(5)], grid=(3, 4))
    assert not (tmp_path / "bad.npz").exists()


def test_cell_fractions_are_exact_block_shares():
    mask = np.zeros((12, 9), bool)
    mask[0:4, 0:3] = True  # the whole of cell (0, 0) on a 3 x 3 grid
    mask[5, 3:6] = True  # one row of cell (1, 1): 3 of 12 pixels
    fractions = cell_fractions(mask, (3, 3))
    assert fractions[0, 0] == 1.0 and fractions[1, 1] == pytest.approx(0.25)
    assert fractions.sum() == pytest.approx(1.25)


def test_patch_truth_puts_each_noise_mask_on_the_feature_grid(tmp_path):
    mask = np.zeros((64, 64), np.uint8)
    mask[:16, :16] = 255  # the top-left cell of a 4 x 4 grid over 32 x 32
    mask[40, :] = 255  # a one-pixel line: touches a row of cells, fills none, and never vanishes
    Image.fromarray(mask).save(tmp_path / "mask.png")
    manifest = pd.DataFrame(
        {
            "image_id": ["a", "b", "n", "m", "tg", "td"],
            "category": ["x", "y", "y", "y", "x", "x"],
            "subset": ["train"] * 4 + ["test"] * 2,
            "role": ["clean", "clean", "noise", "noise", "test", "test"],
            "class_role": ["tail", "head", "head", "head", "tail", "tail"],
        }
    )
    masks = [None, None, str(tmp_path / "mask.png"), None, None, str(tmp_path / "mask.png")]
    index = pd.DataFrame(
        {
            "image_id": manifest["image_id"],
            "label": ["good", "good", "hole", "hole", "good", "hole"],
            "mask_path": masks,
            "width": 64,
            "height": 64,
        }
    )
    truth = patch_truth(manifest, index, Geometry("resize", size=(32, 32)), (4, 4))
    assert list(truth["test_image_ids"]) == ["tg", "td"] and list(truth["test_defective"]) == [False, True]
    np.testing.assert_array_equal(truth["test_defect_fraction"][1], truth["defect_fraction"][2])  # the same mask
    assert (truth["test_defect_fraction"][0] == 0).all() and list(truth["test_class_role"]) == ["tail", "tail"]
    assert truth["test_content"].shape == (2, 4, 4) and truth["test_content"].all()  # resize: every cell is content
    wide = patch_truth(manifest, index.assign(height=32), Geometry("pad", size=(32, 32)), (4, 4))
    assert wide["test_content"][0, 1:3].all() and not wide["test_content"][0, 0].any()  # its top and bottom padded
    fraction = truth["defect_fraction"]
    assert fraction[2, 0, 0] > 0.9  # the square's cell: its edge blurred by the bilinear resize, as the image's
    assert fraction[2, 0, 2:].max() == 0 and fraction[2, 3].max() == 0  # no farther than the resize's support
    assert (fraction[2, 2] > 0).all() and (fraction[2, 2] < 0.5).all()  # the line: touches every cell, fills none
    assert (fraction[:2] == 0).all()
    assert np.isnan(fraction[3]).all() and list(truth["mask_known"]) == [True, True, True, False]


@pytest.mark.parametrize(
    "kind, geometry", [("rot15flip", Geometry("crop", 40, 32)), ("rotflip", Geometry("resize", size=(32, 24)))]
)
def test_a_mask_takes_the_transform_of_its_image_in_every_view(tmp_path, kind, geometry):
    mask = np.zeros((50, 60), bool)
    mask[5:20, 30:55] = True
    Image.fromarray(mask.astype(np.uint8) * 255).convert("RGB").save(tmp_path / "image.png")
    images = tail_views(str(tmp_path / "image.png"), geometry, kind)
    masks = mask_views(mask, geometry, kind)
    assert len(images) == len(masks)
    for image, view in zip(images, masks):
        np.testing.assert_array_equal(image[..., 0], np.round(view * 255).astype(np.uint8))


def known_truth(rng, num=30, h=3, w=5):
    """30 images: classes a (tail, 6 clean), b and c (head, 8 clean + 4 noise each); noise masks random."""
    category = np.array(["a"] * 6 + ["b"] * 12 + ["c"] * 12)
    role = np.array(["clean"] * 6 + (["clean"] * 8 + ["noise"] * 4) * 2)
    fraction = np.zeros((num, h, w), np.float32)
    noise = role == "noise"
    fraction[noise] = rng.choice([0.0, 0.0, 0.2, 0.6, 1.0], size=(noise.sum(), h, w))
    return {
        "image_ids": np.array([f"id{i}" for i in range(num)]),
        "category": category,
        "class_role": np.where(category == "a", "tail", "head"),
        "role": role,
        "defect_fraction": fraction,
        "mask_known": np.ones(num, bool),
    }


def test_every_diagnostic_equals_a_direct_recount():
    rng = np.random.default_rng(7)
    truth = known_truth(rng)
    num, h, w = truth["defect_fraction"].shape
    order = rng.permutation(num)  # the method saw the images in another order than the manifest's
    memory = 40
    provenance = {
        "image_ids": truth["image_ids"][order],
        "memory_bank": True,
        "image": rng.integers(0, num, memory),
        "cell": rng.integers(0, h * w, memory),
        "view": np.where(rng.random(memory) < 0.3, rng.integers(1, 4, memory), 0),
        "view_kind": "rotflip",
        "filter_score": rng.random((num, h, w)).astype(np.float32),
        "filter_kept": rng.random((num, h, w)) < 0.8,
        "tail_predicted": rng.random(num) < 0.3,
        "class_size_estimate": rng.integers(1, 15, num).astype(float),
    }
    view_masks = {i: rng.choice([0.0, 0.7], size=(3, h, w)) for i in range(num)}
    result = run_diagnostics(truth, provenance, lambda image, kind: view_masks[image])
    value = result.set_index(["quantity", "subset", "group", "category"])["value"]
    assert value.index.is_unique

    # the recount: one patch at a time, in the provenance's own order
    def group_of(row):  # the truth row of the provenance's image row
        return int(np.flatnonzero(truth["image_ids"] == provenance["image_ids"][row])[0])

    def member(t, subset, scope, fraction):  # scope: (group, "*") or (the category's role, the category)
        group, category = scope
        in_group = truth["category"][t] == category if category != "*" else group in ("all", truth["class_role"][t])
        if subset == "clean":
            return in_group and truth["role"][t] == "clean"
        if truth["role"][t] != "noise" or not in_group:
            return False
        return subset == "noise" or (fraction > 0 if subset == "defect" else fraction >= 0.5)

    scopes = [("tail", "*"), ("head", "*"), ("all", "*"), ("tail", "a"), ("head", "b"), ("head", "c")]
    for subset in ("clean", "noise", "defect", "defect_half"):
        for scope in scopes:
            key = (subset, *scope)
            pool = kept = 0
            for p in range(num):
                t = group_of(p)
                for cell in range(h * w):
                    if member(t, subset, scope, truth["defect_fraction"][t].ravel()[cell]):
                        pool += 1
                        kept += provenance["filter_kept"][p].ravel()[cell]
            in_bank = 0
            for i in range(memory):
                t, cell, view = group_of(provenance["image"][i]), provenance["cell"][i], provenance["view"][i]
                fraction = truth["defect_fraction"][t].ravel()[cell]
                if view and truth["role"][t] == "noise":
                    fraction = view_masks[t][view - 1].ravel()[cell]
                in_bank += member(t, subset, scope, fraction)
            if pool == 0:
                assert (("enrichment", *key) not in value.index) and (("removed", *key) not in value.index)
                continue
            assert value[("bank_share", *key)] == pytest.approx(100 * in_bank / memory)
            assert value[("pool_share", *key)] == pytest.approx(100 * pool / (num * h * w))
            assert value[("enrichment", *key)] == pytest.approx((in_bank / memory) / (pool / (num * h * w)))
            assert value[("removed", *key)] == pytest.approx(100 * (pool - kept) / pool)

    # the filter's AUROC: the share of (defect, clean) pairs ordered right, ties half
    positives, negatives = [], []
    for p in range(num):
        t = group_of(p)
        for cell in range(h * w):
            score = provenance["filter_score"][p].ravel()[cell]
            if truth["role"][t] == "clean":
                negatives.append(score)
            elif truth["defect_fraction"][t].ravel()[cell] > 0:
                positives.append(score)
    pairs = np.subtract.outer(np.array(positives), np.array(negatives))
    assert value["filter_auroc", "defect", "all", "*"] == pytest.approx(
        100 * ((pairs > 0).mean() + 0.5 * (pairs == 0).mean())
    )

    # the TailSampler against the true tail images (clean images of tail classes)
    called = {provenance["image_ids"][p] for p in range(num) if provenance["tail_predicted"][p]}
    true_tail = {
        truth["image_ids"][t] for t in range(num) if truth["class_role"][t] == "tail" and truth["role"][t] == "clean"
    }
    precision, recall = len(called & true_tail) / len(called), len(called & true_tail) / len(true_tail)
    assert value["tail_precision", "clean", "all", "*"] == pytest.approx(100 * precision)
    assert value["tail_recall", "clean", "all", "*"] == pytest.approx(100 * recall)
    if precision + recall:
        assert value["tail_f1", "clean", "all", "*"] == pytest.approx(200 * precision * recall / (precision + recall))
    noise_ids = {truth["image_ids"][t] for t in range(num) if truth["role"][t] == "noise"}
    assert value["noise_called_tail", "noise", "all", "*"] == len(called & noise_ids)
    for scope in scopes[3:]:  # class by class: the share of its clean and of its noise images called tail
        for role in ("clean", "noise"):
            ids = {
                truth["image_ids"][t]
                for t in range(num)
                if truth["category"][t] == scope[1] and truth["role"][t] == role
            }
            if ids:
                assert value[("called_tail", role, *scope)] == pytest.approx(100 * len(called & ids) / len(ids))
            if role == "noise" and ids:
                assert value[("noise_called_tail", "noise", *scope)] == len(called & ids)
    sizes = {"a": 6, "b": 12, "c": 12}
    errors = [
        abs(provenance["class_size_estimate"][p] - sizes[truth["category"][group_of(p)]])
        / sizes[truth["category"][group_of(p)]]
        for p in range(num)
        if truth["role"][group_of(p)] == "clean"
    ]
    assert value["class_size_error", "clean", "all", "*"] == pytest.approx(100 * np.mean(errors))


def test_noise_without_masks_keeps_the_image_level_rows_only():
    rng = np.random.default_rng(1)
    truth = known_truth(rng)
    truth["defect_fraction"][truth["role"] == "noise"] = np.nan
    truth["mask_known"][truth["role"] == "noise"] = False
    num, h, w = truth["defect_fraction"].shape
    provenance = {
        "image_ids": truth["image_ids"],
        "memory_bank": True,
        "image": np.arange(num),
        "cell": np.zeros(num, int),
        "view": np.zeros(num, int),
        "view_kind": "none",
    }
    result = run_diagnostics(truth, provenance)
    assert set(result["subset"]) == {"clean", "noise"}
    noise = result.set_index(["quantity", "subset", "group", "category"])["value"]
    assert noise["bank_share", "noise", "all", "*"] == pytest.approx(100 * 8 / 30)


def test_seed_summary_has_the_auroc_tables_statistics():
    rows = [
        dict(
            dataset="d",
            tail="pareto",
            seed=s,
            model_seed=m,
            method="x",
            quantity="enrichment",
            subset="defect",
            group="all",
            category="*",
            unit="ratio",
            value=v,
            count=1,
        )
        for (s, m), v in {(1, 0): 2.0, (1, 1): 4.0, (2, 0): 6.0, (2, 1): 8.0}.items()
    ]
    summary = diagnostics_summary(pd.DataFrame(rows)).iloc[0]
    assert summary["mean"] == 5.0 and summary["n_seeds"] == 2 and summary["n_model_seeds"] == 2
    assert summary["std_split"] == pytest.approx(np.std([3.0, 7.0], ddof=1))
    assert summary["ci_low"] < 3.0 and summary["ci_high"] > 7.0  # a ratio is not clipped to [0, 100]


def test_the_class_by_class_table_puts_each_categorys_auroc_beside_its_bank(tmp_path):
    from tailedcore.reporting.aggregate import category_diagnostics
    from tailedcore.reporting.figures import category_diagnostics_figure
    from tailedcore.reporting.render import category_diagnostics_markdown

    rng = np.random.default_rng(3)
    truth = known_truth(rng)
    num, h, w = truth["defect_fraction"].shape
    provenance = {  # a bank of every patch of class b's clean images
        "image_ids": truth["image_ids"],
        "memory_bank": True,
        "image": np.repeat(np.arange(6, 14), h * w),
        "cell": np.tile(np.arange(h * w), 8),
        "view": np.zeros(8 * h * w, int),
        "view_kind": "none",
    }
    runs = []
    for seed in (1, 2):
        runs.append(run_diagnostics(truth, provenance).assign(dataset="d", tail="step_k1", seed=seed, model_seed=0))
    summary = diagnostics_summary(pd.concat(runs).assign(method="patchcore"))
    metrics = pd.DataFrame(
        [
            dict(tail="step_k1", seed=s, method=m, category=c, class_role=r, metric="image_auroc", value=v)
            for s in (1, 2)
            for m in ("patchcore", "padim")
            for c, r, v in (("a", "tail", 0.5 + 0.1 * s), ("b", "head", 0.9), ("c", "head", 0.4))
        ]
    )
    table = category_diagnostics(summary, metrics).set_index(["category", "method"])
    assert table.loc[("a", "patchcore"), "image AUROC (%)"] == pytest.approx(65.0)  # the mean over seeds
    assert table.loc[("b", "patchcore"), "role"] == "head" and table.loc[("a", "padim"), "role"] == "tail"
    assert table.loc[("b", "patchcore"), "bank: clean rows (%)"] == pytest.approx(100.0)  # all of the bank
    assert table.loc[("b", "patchcore"), "clean enrichment"] == pytest.approx(30 / 8)  # 8 of the 30 images
    assert table.loc[("c", "patchcore"), "clean enrichment"] == 0.0 and np.isnan(
        table.loc[("b", "padim"), "clean enrichment"]
    )
    text = category_diagnostics_markdown(
        table.reset_index(), dataset="d", tails=["step_k1"], methods=["patchcore", "padim"]
    )
    assert "| b | head | patchcore | 90 | " in text and "| b | head | padim | 90 | – |" in text
    paths = category_diagnostics_figure(table.reset_index(), ["step_k1"], ["patchcore", "padim"], "t", tmp_path / "f")
    assert [p.suffix for p in paths] == [".png", ".svg"] and paths[0].stat().st_size > 1000


def test_the_test_scores_are_recounted_patch_by_patch():
    """Every test-score quantity against a direct recount: the mean patch score of good, defective and defect
    test patches, and the class and truth of the memory row each matched, per class group and class."""
    rng = np.random.default_rng(11)
    truth = known_truth(rng)
    num, h, w = truth["defect_fraction"].shape
    tests = 14
    categories = rng.choice(["a", "b", "c"], tests)
    truth.update(
        test_image_ids=np.array([f"test{i}" for i in range(tests)]),
        test_category=categories,
        test_class_role=np.where(categories == "a", "tail", "head"),
        test_defective=rng.random(tests) < 0.5,
    )
    truth["test_defect_fraction"] = np.where(
        truth["test_defective"][:, None, None], rng.choice([0.0, 0.4, 1.0], (tests, h, w)), 0.0
    ).astype(np.float32)
    truth["test_mask_known"] = np.ones(tests, bool)
    truth["test_content"] = rng.random((tests, h, w)) < 0.8  # pad geometry: the other cells are padding
    memory = 30
    order = rng.permutation(tests)  # the run scored the test images in another order than the manifest's
    provenance = {
        "image_ids": truth["image_ids"],
        "memory_bank": True,
        "image": rng.integers(0, num, memory),
        "cell": rng.integers(0, h * w, memory),
        "view": np.zeros(memory, int),
        "view_kind": "none",
        "test_image_ids": truth["test_image_ids"][order],
        "test_nearest": rng.integers(0, memory, (tests, h, w)),
    }
    scores = {"image_ids": truth["test_image_ids"][order[::-1]], "patch_scores": rng.random((tests, h, w))}
    value = run_diagnostics(truth, provenance, scores=scores).set_index(["quantity", "subset", "group", "category"])
    value = value["value"]
    score_of = {scores["image_ids"][i]: scores["patch_scores"][i].ravel() for i in range(tests)}
    for subset in ("good", "defective", "defect"):
        for scope in [("tail", "*"), ("head", "*"), ("all", "*"), ("tail", "a"), ("head", "b")]:
            patch_scores, defect_rows, noise_rows, same = [], [], [], []
            for p in range(tests):
                t = order[p]
                in_scope = (
                    categories[t] == scope[1] if scope[1] != "*" else scope[0] in ("all", truth["test_class_role"][t])
                )
                for cell in range(h * w):
                    if not truth["test_content"][t].ravel()[cell]:
                        continue
                    fraction = truth["test_defect_fraction"][t].ravel()[cell]
                    wanted = {
                        "good": not truth["test_defective"][t],
                        "defective": truth["test_defective"][t],
                        "defect": truth["test_defective"][t] and fraction > 0,
                    }[subset]
                    if not (in_scope and wanted):
                        continue
                    row = provenance["test_nearest"][p].ravel()[cell]
                    image, bank_cell = provenance["image"][row], provenance["cell"][row]
                    patch_scores.append(score_of[truth["test_image_ids"][t]][cell])
                    defect_rows.append(truth["defect_fraction"][image].ravel()[bank_cell] > 0)
                    noise_rows.append(truth["role"][image] == "noise")
                    same.append(truth["category"][image] == categories[t])
            if not patch_scores:
                assert ("test_score", subset, *scope) not in value.index
                continue
            assert value[("test_score", subset, *scope)] == pytest.approx(np.mean(patch_scores))
            assert value[("match_defect", subset, *scope)] == pytest.approx(100 * np.mean(defect_rows))
            assert value[("match_noise", subset, *scope)] == pytest.approx(100 * np.mean(noise_rows))
            assert value[("match_same_class", subset, *scope)] == pytest.approx(100 * np.mean(same))
