"""anomalib models as baselines: config checks before any job, weights from the wheel or a checked file, one
memory-bank and one trained model end to end through the rule, and WinClip's plumbing (zero- and few-shot).

Skipped without the optional extra (pip install -e '.[anomalib]'), unless TAILEDCORE_REQUIRE_ANOMALIB=1 (set by
.ci/run, which installs it), where a missing anomalib is a failure."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate
from workflow_copy import ROOT, tiny_config

from tailedcore.baselines import anomalib_bridge as bridge
from tailedcore.data.download import sha256sum
from tailedcore.data.images import Geometry
from tailedcore.plan.workflow import Plan
from tailedcore.stages.anomalib import run_anomalib

SNAKEMAKE = Path(sys.executable).with_name("snakemake")
INSTALLED = importlib.util.find_spec("anomalib") is not None
if os.environ.get("TAILEDCORE_REQUIRE_ANOMALIB") == "1" and not INSTALLED:
    raise RuntimeError(f"TAILEDCORE_REQUIRE_ANOMALIB=1 but anomalib is not installed: {bridge.INSTALL}")
needs_anomalib = pytest.mark.skipif(not INSTALLED, reason=f"the optional extra: {bridge.INSTALL}")

PATCHCORE = {
    "name": "anomalib_patchcore",
    "model": "Patchcore",
    "backbone": "tf_efficientnet_lite0",
    "weights": "wheel",
    "init": {"layers": ["blocks.2", "blocks.4"], "coreset_sampling_ratio": 0.1},
}
STFPM = {
    "name": "anomalib_stfpm",
    "model": "Stfpm",
    "backbone": "tf_efficientnet_lite0",
    "weights": "wheel",
    "init": {"layers": ["blocks.1", "blocks.2", "blocks.4"]},
    "epochs": 1,
    "batch_size": 8,
}


def config_with(*entries, run=("patchcore",)):
    return tiny_config({"run": [*run, *(e["name"] for e in entries)], "anomalib": list(entries)})


def validated(config):
    """The config with the schema's defaults filled in, as the Snakefile sees it (a copy)."""
    config = yaml.safe_load(yaml.safe_dump(config))
    validate(config, schema=str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def problems_of(config) -> str:
    try:
        Plan(validated(config), ROOT)
    except Exception as err:  # the config error lists every problem
        return str(err)
    return ""


def test_an_anomalib_model_without_the_extra_fails_at_parse_time_with_the_install_command(monkeypatch):
    monkeypatch.setattr(bridge, "anomalib_models", lambda: None)
    message = problems_of(config_with(PATCHCORE))
    assert "anomalib is not installed" in message and "pip install -e '.[anomalib]'" in message
    configured_not_run = config_with(PATCHCORE)
    configured_not_run["methods"]["run"] = ["patchcore"]
    assert problems_of(configured_not_run) == ""  # configured but not run: the base install is enough


def test_entry_mistakes_are_listed_before_any_job(monkeypatch, tmp_path):
    monkeypatch.setattr(bridge, "anomalib_models", lambda: ["Patchcore", "Padim", "Stfpm", "WinClip"])
    wrong_class = {**PATCHCORE, "model": "PatchCore"}
    wrong_backbone = {**STFPM, "backbone": "resnet18"}  # the wheel holds EfficientNet-Lite0 only
    missing_file = {**PATCHCORE, "name": "from_file", "weights": {"path": str(tmp_path / "w.pth"), "sha256": "0" * 64}}
    clash = {**PATCHCORE, "name": "padim"}
    message = problems_of(config_with(wrong_class, wrong_backbone, missing_file, clash))
    assert "no model 'PatchCore' (did you mean 'Patchcore'?)" in message
    assert "weights 'wheel' are EfficientNet-Lite0's" in message
    assert f"{tmp_path / 'w.pth'} are not there" in message
    assert "'padim' has the name of a package or rule method" in message


def test_a_weights_file_with_another_sha256_stops_the_job_naming_both(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not the weights")
    entry = bridge.AnomalibEntry.of({**PATCHCORE, "weights": {"path": str(path), "sha256": "a" * 64}})
    with pytest.raises(ValueError, match=f"has sha256 {sha256sum(path)}, the config says {'a' * 64}"):
        bridge.backbone_state(entry)


@needs_anomalib
def test_the_wheel_weights_reach_the_anomalib_backbone():
    import torch

    from tailedcore.features.backbones import load_efficientnet_lite0

    entry = bridge.AnomalibEntry.of(PATCHCORE)
    state, sha256 = bridge.backbone_state(entry)
    model = bridge.build_model(entry, state)
    ours = load_efficientnet_lite0().model.state_dict()
    theirs = model.model.feature_extractor.feature_extractor.state_dict()
    assert len(sha256) == 64 and theirs.keys() <= ours.keys()
    for key in ("conv_stem.weight", "blocks.4.0.conv_pw.weight", "bn1.running_var"):
        assert torch.equal(theirs[key], ours[key])


@needs_anomalib
def test_torchvision_weights_from_a_checked_file_reach_a_timm_backbone(tmp_path):
    """The paper's wide_resnet50_2 with torchvision's V1 weights (not timm's racm_in1k): a torchvision state dict
    in a local file, its sha256 checked, loads into anomalib's timm backbone name for name."""
    import torch
    from torchvision.models import wide_resnet50_2

    weights = wide_resnet50_2(weights=None).state_dict()  # the file's format; random values stand in for V1
    path = tmp_path / "wide_resnet50_2-95faca4d.pth"
    torch.save(weights, path)
    entry = {
        **PATCHCORE,
        "backbone": "wide_resnet50_2",
        "weights": {"path": str(path), "sha256": sha256sum(path)},
    }
    entry = bridge.AnomalibEntry.of({**entry, "init": {"layers": ["layer2", "layer3"]}})
    model = bridge.build_model(entry, bridge.backbone_state(entry)[0])
    theirs = model.model.feature_extractor.feature_extractor.state_dict()
    for key in ("conv1.weight", "layer2.0.conv1.weight", "layer3.5.bn3.running_mean"):
        assert torch.equal(theirs[key], weights[key])


@needs_anomalib
@pytest.mark.slow
def test_a_memory_bank_and_a_trained_model_run_through_the_rule_into_the_tables(tmp_path):
    config = config_with(PATCHCORE, STFPM)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile", "config.yaml"]
    run = subprocess.run([*command, "--cores", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-4000:]

    tables = tmp_path / "results" / "tables"
    image = pd.read_csv(tables / "tiny_image_auroc.csv", index_col="method")
    assert list(image.index) == ["patchcore", "anomalib_patchcore", "anomalib_stfpm"]
    assert image.loc["anomalib_patchcore"].dropna().between(0, 100).all()
    runtime = pd.read_csv(tables / "tiny_runtime.csv")
    assert {"anomalib_patchcore", "anomalib_stfpm"} <= set(runtime["method"].astype(str))
    significance = pd.read_csv(tables / "tiny_significance.csv")
    pairs = set(zip(significance["method_a"], significance["method_b"]))
    assert pairs & {("patchcore", "anomalib_patchcore"), ("anomalib_patchcore", "patchcore")}  # parity, paired

    run_dir = tmp_path / "results" / "tiny" / "scores" / "step_k1" / "seed1" / "model0"
    for name, learning in (("anomalib_patchcore", "one_class"), ("anomalib_stfpm", "one_class")):
        report = json.loads((run_dir / f"{name}.json").read_text())
        assert report["anomalib_version"] == bridge.TESTED_VERSION and report["learning_type"] == learning
        assert report["weights"] == "wheel" and len(report["weights_sha256"]) == 64
        assert report["fit_seconds"] > 0 and report["peak_rss_mb"] > 0 and report["model_config"]
        with np.load(run_dir / f"{name}.npz") as scores:
            assert scores["patch_scores"].shape[1:] == (48, 48)  # maps on the dataset's geometry
            assert np.isfinite(scores["image_scores"]).all() and scores["image_scores"].std() > 0
    manifest = pd.read_csv(tmp_path / "results" / "tiny" / "splits" / "step_k1" / "seed1.csv")
    report = json.loads((run_dir / "anomalib_patchcore.json").read_text())
    assert report["train_images"] == (manifest["subset"] == "train").sum()  # the whole pool, noise included
    # no provenance file: the diagnostics cover the package's methods only
    assert set(pd.read_csv(tables / "tiny_diagnostics.csv")["method"]) == {"patchcore"}


@needs_anomalib
@pytest.mark.slow
def test_winclip_zero_and_few_shot_plumbing_offline(tmp_path, tiny_dataset):
    """WinClip with a randomly initialised CLIP (weights: none; its real weights come from the hub): the
    numbers mean nothing, the plumbing is what is tested, both without and with reference images."""
    from tailedcore.data.index import build_mvtec_index

    root, spec = tiny_dataset
    index = build_mvtec_index(root, spec.categories[:2])
    index.to_csv(tmp_path / "index.csv", index=False)
    train = index[index["split"] == "train"].head(4)
    test = pd.concat(
        [
            index[(index["split"] == "test") & (index["label"] == "good")].head(1),
            index[index["label"] != "good"].head(1),
        ]
    )
    manifest = pd.DataFrame(
        {
            "image_id": [*train["image_id"], *test["image_id"]],
            "category": [*train["category"], *test["category"]],
            "subset": ["train"] * len(train) + ["test"] * len(test),
            "role": ["clean"] * len(train) + ["test"] * len(test),
            "class_role": "head",
        }
    )
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    for shots in (0, 1):
        entry = {"name": f"winclip{shots}", "model": "WinClip", "weights": "none", "input_size": [240, 240]}
        entry.update(init={"class_name": "object"}, batch_size=2, reference_images=shots)
        report = run_anomalib(
            entry=entry,
            seed=0,
            manifest_path=tmp_path / "manifest.csv",
            index_path=tmp_path / "index.csv",
            geometry=Geometry(resize=48, crop=48),
            setting=("tiny", "step_k1"),
            scores_path=tmp_path / f"w{shots}.npz",
            report_path=tmp_path / f"w{shots}.json",
            threads=2,
        )
        assert report["learning_type"] == ("few_shot" if shots else "zero_shot")
        with np.load(tmp_path / f"w{shots}.npz") as scores:
            assert scores["patch_scores"].shape == (2, 48, 48)  # 240 x 240 maps taken back to the geometry
