"""End to end on real-image quirks: a folder dataset of elongated 16-bit greyscale strips of many sizes with
defects at the borders and EXIF-rotated 4:3 JPEG photos, under each geometry; ELPV (image labels only); and a
folder index that follows its files."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from real_fixtures import write_real_folder
from workflow_copy import TINY_FEATURES

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
ALL_METHODS = ["patchcore", "softpatch", "tailedcore", "padim"]


def folder_config(path: Path, features: dict, methods: list[str], masks="auto") -> dict:
    return {
        "datasets": {
            "real": {
                "kind": "folder",
                "path": str(path),
                "categories": ["photo", "strip"],
                "noise_ratio": 0.25,
                "masks": masks,
            }
        },
        "splits": {"source": "generated", "tails": ["step_k1"], "seeds": [1], "rules": {"tail_threshold": 6}},
        "features": {"backbone": "efficientnet_lite0", "pretrain_dim": 32, "target_dim": 32, "threads": 1, **features},
        "methods": {
            "run": methods,
            "threads": 1,
            "tailedcore": {"tail_augmentation": "rotflip"},
            "padim": {"num_channels": 16},
        },
        "evaluation": {"extra_metrics": True},
    }


def snakemake(workdir: Path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    command += ["--configfile", str(path), "--cores", "2", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def planned(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Job counts of a dry run's 'Job stats' table."""
    counts = {}
    for line in result.stdout.splitlines():
        found = re.match(r"^([a-z_]+)\s+(\d+)$", line.strip())
        if found and found.group(1) not in ("total",):
            counts[found.group(1)] = int(found.group(2))
    return counts


@pytest.mark.slow
@pytest.mark.parametrize(
    "features, methods, odd_names",
    [
        ({"geometry": "pad", "size": [40, 64]}, ALL_METHODS, True),
        ({"geometry": "resize", "size": [64, 32]}, ALL_METHODS, False),
        ({"geometry": "crop", "resize": 32, "crop": 32}, ["patchcore"], False),
    ],
    ids=["pad-odd-file-names", "resize", "crop"],
)
def test_folder_of_real_images_runs_under_each_geometry(tmp_path, features, methods, odd_names):
    """Under pad, every file name is one a real dataset has (spaces, unicode, brackets, a leading dash, quotes,
    commas, 'NA'): the ids survive the index, the feature cache, every method's scores, metrics and figures."""
    data = write_real_folder(tmp_path / "data", odd_names=odd_names)
    work = tmp_path / "work"
    result = snakemake(work, folder_config(data, features, methods))
    assert result.returncode == 0, result.stderr[-4000:]
    tables = work / "results" / "tables"
    image = pd.read_csv(tables / "real_image_auroc.csv", index_col=0)
    pixel = pd.read_csv(tables / "real_pixel_auroc.csv", index_col=0)
    assert list(image.index) == methods and image["step_k1_all"].notna().all()
    assert pixel["step_k1_all"].notna().all()
    summary = (work / "results" / "real" / "summary.md").read_text()
    assert "all-zero mask" in summary and ("kratzer ü 3 s00_mask.png" if odd_names else "s00_mask.png") in summary
    index = pd.read_csv(work / "results" / "real" / "index.csv", dtype=str, keep_default_na=False)
    test_ids = set(index.loc[index["split"] == "test", "image_id"])
    if odd_names:
        assert {"strip/test/crack/kratzer ü 3 s00", "photo/test/dent/[b] (2) p02", "strip/train/good/NA s07"} <= set(
            index["image_id"]
        )
    for method in methods:  # every test image scored under its own id, by every method
        scored = np.load(work / "results" / "real" / "scores" / "step_k1" / "seed1" / "model0" / f"{method}.npz")
        assert set(scored["image_ids"].tolist()) <= test_ids
        assert len(set(scored["image_ids"].tolist())) == len(scored["image_ids"])
    per_class = pd.read_csv(tables / "real_per_class.csv")
    emptied = per_class.groupby("category")["n_masks_emptied"].max()
    if features["geometry"] == "crop":  # the strips' border defects are cut away, and the run says so
        assert emptied["strip"] >= 1
        assert "lose every defect pixel under crop 32" in summary and "features.geometry: pad" in summary
        assert "consider evaluation.resolution: native" in summary
        assert "lost every defect pixel" in (tables / "real_image_auroc.md").read_text()
        assert "on the model's grid" in (tables / "real_pixel_auroc.md").read_text()
    else:
        assert emptied["strip"] == 1  # only the all-zero mask
    for figure in ("per_class_step_k1.png", "anomaly_maps_step_k1.png"):
        assert (work / "results" / "figures" / "real" / figure).stat().st_size > 0
    scores = json.loads(
        (work / "results" / "real" / "scores" / "step_k1" / "seed1" / "model0" / f"{methods[0]}.json").read_text()
    )
    assert scores["features"]["geometry"] == features["geometry"]
    if features["geometry"] == "crop":
        # a folder dataset's index follows its files: a new image in one category rebuilds that category only
        Image.new("RGB", (64, 48), (90, 90, 90)).save(data / "photo" / "train" / "good" / "added.png")
        dry = snakemake(work, folder_config(data, features, methods), "-n")
        assert dry.returncode == 0, dry.stderr[-3000:]
        jobs = planned(dry)
        assert jobs.get("index_category") == 1 and jobs.get("features") == 1, dry.stdout[-3000:]
        assert jobs.get("coverage") == 1
        # the same fits evaluated at each mask's own resolution: only evaluation and tables rerun, and the
        # defects the crop cut away count again (as missed where the model never saw them)
        native = folder_config(data, features, methods)
        native["evaluation"]["resolution"] = "native"
        (data / "photo" / "train" / "good" / "added.png").unlink()  # the folder as it was run
        jobs = planned(snakemake(work, native, "-n"))
        assert jobs.get("evaluate") == 1 and "fit_score" not in jobs and "features" not in jobs, jobs
        result = snakemake(work, native)
        assert result.returncode == 0, result.stderr[-4000:]
        per_class = pd.read_csv(tables / "real_per_class.csv")
        assert (per_class["n_masks_emptied"] == 0).all() and set(per_class["pixel_resolution"]) == {"native"}
        assert pd.read_csv(tables / "real_pixel_auroc.csv", index_col=0)["step_k1_all"].notna().all()
        assert "Pixel metrics at native resolution" in (tables / "real_pixel_auroc.md").read_text()
        assert "lost every defect pixel" not in (tables / "real_image_auroc.md").read_text()
        assert "where no mask loses a pixel" in (work / "results" / "real" / "summary.md").read_text()


@pytest.mark.slow
def test_elpv_subset_has_image_metrics_only(tmp_path):
    config = {
        "datasets": {
            "elpv": {
                "kind": "elpv",
                "noise_ratio": 0.1,
                "elpv": {"seed": 0, "max_train_good": 12, "max_test_good": 4, "max_test_defect": 4},
            }
        },
        "splits": {"source": "generated", "tails": ["step_k4"], "seeds": [1], "rules": {"tail_threshold": 6}},
        "features": dict(TINY_FEATURES),
        "methods": {"run": ["patchcore", "padim"], "threads": 1, "padim": {"num_channels": 16}},
        "evaluation": {"extra_metrics": True},
    }
    result = snakemake(tmp_path, config)
    assert result.returncode == 0, result.stderr[-4000:]
    tables = tmp_path / "results" / "tables"
    image = pd.read_csv(tables / "elpv_image_auroc.csv", index_col=0)
    assert image["step_k4_all"].notna().all()
    assert not list(tables.glob("elpv_pixel_auroc*"))  # absent, not 0
    metrics = set(pd.read_csv(tables / "elpv_tidy.csv")["metric"])
    assert metrics == {"image_auroc", "extra_image_f1_max"}
    summary = tmp_path / "results" / "elpv" / "summary.csv"
    counts = pd.read_csv(summary).set_index("category")
    assert counts.loc["mono", "train_good"] == 12 and counts.loc["poly", "test_defect"] == 4
    assert (tmp_path / "results" / "figures" / "elpv" / "anomaly_maps_step_k4.png").stat().st_size > 0


def test_readme_custom_dataset_commands_work_as_written(tmp_path):
    """The three commands of docs/datasets.md for your own dataset, with the template's path and categories set as a
    user would; the check target writes the summary in seconds, before any feature."""
    from workflow_copy import readme_block

    data = write_real_folder(tmp_path / "data", n_train=24)  # enough for the template's Pareto split
    template = (ROOT / "config" / "custom.yaml").read_text()
    edited = template.replace("/path/to/your/dataset", str(data)).replace("[widget, gadget]", "[photo, strip]")
    assert edited != template
    work = tmp_path / "work"
    (work / "config").mkdir(parents=True)
    (work / "config" / "custom.yaml").write_text(edited)
    lines = [line for line in readme_block("custom-commands").splitlines() if line.strip()]
    assert lines[0].startswith("cp config/custom.yaml config/mydata.yaml")
    subprocess.run(lines[0].split("#")[0], shell=True, cwd=work, check=True)
    check = lines[1].split("#")[0].split()
    assert check[0] == ".venv/bin/snakemake" and check[1] == "check"
    run = subprocess.run(
        [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), *check[1:]],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = pd.read_csv(work / "results" / "custom" / "summary.csv").set_index("category")
    assert summary.loc["strip", "distinct_sizes"] > 5 and summary.loc["photo", "test_defect"] == 3
    assert summary.loc["strip", "geometry"] == "pad 192x192" and summary.loc["strip", "masks_all_zero"] == 1
    assert not (work / "results" / "custom" / "features").exists()  # nothing heavy ran
    # the template keeps the paper's coreset ratio: check estimates it and names no departure
    report = (work / "results" / "custom" / "check.md").read_text()
    assert "Estimated time of custom" in report and "Coreset ratio not the paper's" not in report, report
    whole = lines[2].split("#")[0].split()
    dry = subprocess.run(
        [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), *whole[1:], "-n"], cwd=work, capture_output=True, text=True
    )
    assert dry.returncode == 0 and "fit_score" in dry.stdout, dry.stderr[-2000:]
