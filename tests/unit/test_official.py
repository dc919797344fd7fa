"""The official split manifests, converted over indexes with the real MVTec AD / VisA file names."""

from pathlib import Path

import pandas as pd
import pytest
from test_splits import MVTEC_TRAIN

from tailedcore.data.index import build_visa_index
from tailedcore.data.longtail import split_statistics
from tailedcore.data.official import (
    OFFICIAL_SEEDS,
    OFFICIAL_TAILS,
    ManifestError,
    checksums,
    convert_official,
    fetch_official,
    official_url,
)

DATA = Path(__file__).resolve().parents[1] / "data"
OFFICIAL = DATA / "official_splits"
MVTEC_DEFECT_TYPES = {
    "bottle": "broken_large broken_small contamination",
    "cable": "bent_wire cable_swap combined cut_inner_insulation cut_outer_insulation missing_cable missing_wire "
    "poke_insulation",
    "capsule": "crack faulty_imprint poke scratch squeeze",
    "carpet": "color cut hole metal_contamination thread",
    "grid": "bent broken glue metal_contamination thread",
    "hazelnut": "crack cut hole print",
    "leather": "color cut fold glue poke",
    "metal_nut": "bent color flip scratch",
    "pill": "color combined contamination crack faulty_imprint pill_type scratch",
    "screw": "manipulated_front scratch_head scratch_neck thread_side thread_top",
    "tile": "crack glue_strip gray_stroke oil rough",
    "toothbrush": "defective",
    "transistor": "bent_lead cut_lead damaged_case misplaced",
    "wood": "color combined hole liquid scratch",
    "zipper": "broken_teeth combined fabric_border fabric_interior rough split_teeth squeezed_teeth",
}


@pytest.fixture(scope="module")
def mvtec_index():
    """MVTec AD's real names: train/good/000.png.., test/<defect>/000.png.. (30 per type covers every line)."""
    rows = []
    for category, n in MVTEC_TRAIN.items():
        rows += [(f"{category}/train/good/{i:03d}", category, "train", "good", "") for i in range(n)]
        rows += [(f"{category}/test/good/{i:03d}", category, "test", "good", "") for i in range(5)]
        for defect in MVTEC_DEFECT_TYPES[category].split():
            rows += [(f"{category}/test/{defect}/{i:03d}", category, "test", defect, "m") for i in range(30)]
    frame = pd.DataFrame(rows, columns=["image_id", "category", "split", "label", "mask_path"])
    frame.insert(4, "image_path", "")
    return frame


@pytest.fixture(scope="module")
def visa_index(tmp_path_factory):
    """VisA indexed from the real split_csv/1cls.csv over a tree of 1 x 1 images with the real names."""
    import io

    from PIL import Image

    root = tmp_path_factory.mktemp("visa")
    pixel = io.BytesIO()
    Image.new("L", (1, 1)).save(pixel, format="PNG")
    (root / "split_csv").mkdir()
    table = pd.read_csv(OFFICIAL / "split_csv" / "1cls.csv", dtype=str, keep_default_na=False)
    (root / "split_csv" / "1cls.csv").write_text((OFFICIAL / "split_csv" / "1cls.csv").read_text())
    for relative in pd.concat([table["image"], table.loc[table["mask"] != "", "mask"]]):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pixel.getvalue())
    return build_visa_index(root, sorted(table["object"].unique()))


def test_visa_index_counts(visa_index):
    assert len(visa_index) == 8659 + 962 + 1200
    assert (visa_index.loc[visa_index["split"] == "test", "label"] != "good").sum() == 1200


@pytest.mark.parametrize("dataset", ["mvtecad", "visa"])
@pytest.mark.parametrize("tail", OFFICIAL_TAILS)
@pytest.mark.parametrize("seed", OFFICIAL_SEEDS)
def test_all_official_splits_give_the_published_counts(dataset, tail, seed, mvtec_index, visa_index):
    index = mvtec_index if dataset == "mvtecad" else visa_index
    folder = OFFICIAL / dataset / tail / f"seed{seed:02d}"
    manifest = convert_official(folder / "prune_good.txt", folder / "inject_defects.txt", index)
    ours = split_statistics(manifest, index).set_index("category")
    stats = pd.read_csv(DATA / "official_split_stats.csv")
    expected = stats[
        (stats["dataset"] == dataset) & (stats["tail_type"] == tail) & (stats["seed"] == f"seed{seed:02d}")
    ].set_index("class")
    assert sorted(ours.index) == sorted(expected.index)
    pd.testing.assert_series_equal(ours["class_role"], expected.loc[ours.index, "role"], check_names=False)
    assert (ours["n_train_clean"] == expected.loc[ours.index, "n_train_clean"]).all()
    assert (ours["n_train_noise"] == expected.loc[ours.index, "n_injected_noise"]).all()
    assert (ours["n_test_leaked"] == ours["n_train_noise"]).all()  # the paper's protocol keeps them in test


def test_longest_defect_name_wins(mvtec_index, tmp_path):
    (tmp_path / "prune.txt").write_text("")
    (tmp_path / "inject.txt").write_text("carpet/train/good/metal_contamination_003.png\n")
    manifest = convert_official(tmp_path / "prune.txt", tmp_path / "inject.txt", mvtec_index)
    assert manifest.loc[manifest["role"] == "noise", "image_id"].tolist() == ["carpet/test/metal_contamination/003"]


@pytest.mark.parametrize(
    "prune,inject,message",
    [
        ("bottle/train/good/000.png\nbottle/train/good/000.png\n", "", "repeats lines"),
        ("bottle/train/good/999.png\n", "", "not a training image"),
        ("", "carpet/train/good/stain_001.png\n", "names no test defect type"),
        ("", "carpet/train/good/color_099.png\n", "not a test anomaly"),
    ],
)
def test_bad_manifests_are_refused(mvtec_index, tmp_path, prune, inject, message):
    (tmp_path / "prune.txt").write_text(prune)
    (tmp_path / "inject.txt").write_text(inject)
    with pytest.raises(ManifestError, match=message):
        convert_official(tmp_path / "prune.txt", tmp_path / "inject.txt", mvtec_index)


def test_pinned_checksums_cover_the_sixty_files_and_a_local_copy_is_verified(tmp_path):
    sums = checksums()
    assert len(sums) == 60
    target = fetch_official("mvtec", "step_k1", 2, "prune_good.txt", tmp_path / "out.txt", local_dir=OFFICIAL)
    assert target.read_bytes() == (OFFICIAL / "mvtecad" / "step_k1" / "seed02" / "prune_good.txt").read_bytes()
    assert official_url("visa", "pareto", 5, "inject_defects.txt").endswith(
        "7240f04b489fb3d068919e3953cef0ced919a3f8/manifest/visa-nlt/pareto/seed05/inject_defects.txt"
    )
