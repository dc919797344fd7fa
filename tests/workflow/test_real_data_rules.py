"""The download -> extract -> index -> ... rules, run by Snakemake against archives on 127.0.0.1.

An MVTec-layout tar.xz and a VisA-layout tar (split_csv/1cls.csv, JPEG images, raw masks holding small
ids instead of 255) are built from the synthetic generator and served by a loopback HTTP server.
"""

import csv
import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from http_fixture import FileServer
from PIL import Image
from workflow_copy import TINY_FEATURES

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CATEGORIES = ["fabric", "washer", "chip"]


def mvtec_archive(source: Path, target: Path) -> bytes:
    with tarfile.open(target, "w:xz") as tar:
        for category in CATEGORIES:
            tar.add(source / category, arcname=category)
    return target.read_bytes()


def visa_archive(source: Path, work: Path, target: Path) -> bytes:
    """VisA layout: <cat>/Data/Images/{Normal,Anomaly}/*.JPG, <cat>/Data/Masks/Anomaly/*.png, split_csv/1cls.csv."""
    rows = []
    for category in CATEGORIES:
        for split, folder in (("train", source / category / "train" / "good"), ("test", source / category / "test")):
            for image in sorted(folder.rglob("*.png")):
                label = "normal" if image.parent.name == "good" else "anomaly"
                name = f"{image.parent.name}{image.stem}"
                kind = "Normal" if label == "normal" else "Anomaly"
                relative = f"{category}/Data/Images/{kind}/{name}.JPG"
                (work / relative).parent.mkdir(parents=True, exist_ok=True)
                Image.open(image).convert("RGB").save(work / relative, "JPEG", quality=95)
                mask_relative = ""
                if label == "anomaly":
                    raw = np.asarray(
                        Image.open(source / category / "ground_truth" / image.parent.name / f"{image.stem}_mask.png")
                    )
                    mask_relative = f"{category}/Data/Masks/Anomaly/{name}.png"
                    (work / mask_relative).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray((raw > 0).astype(np.uint8) * 2).save(work / mask_relative)  # id 2, not 255
                rows.append([category, split, label, relative, mask_relative])
    (work / "split_csv").mkdir()
    with open(work / "split_csv" / "1cls.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["object", "split", "label", "image", "mask"], *rows])
    with tarfile.open(target, "w") as tar:
        for entry in sorted(work.iterdir()):
            tar.add(entry, arcname=entry.name)
    return target.read_bytes()


@pytest.mark.slow
def test_download_rules_feed_the_chain(tiny_dataset, tmp_path):
    source, _ = tiny_dataset
    (tmp_path / "visa_build").mkdir()
    mvtec_bytes = mvtec_archive(source, tmp_path / "mv.tar.xz")
    visa_bytes = visa_archive(source, tmp_path / "visa_build", tmp_path / "vi.tar")
    own_archive = tmp_path / "mine" / "mv_copy.tar.xz"
    own_archive.parent.mkdir()
    own_archive.write_bytes(mvtec_bytes)
    sha = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    with FileServer({"/m/mv.tar.xz": mvtec_bytes, "/v/vi.tar": visa_bytes}, cut_once={"/v/vi.tar"}) as server:
        config = {
            "datasets": {
                "mv": {
                    "kind": "mvtec",
                    "noise_ratio": 0.2,
                    "categories": CATEGORIES,
                    "filename": "mv.tar.xz",
                    "urls": [f"{server.url}/dead/mv.tar.xz", f"{server.url}/m/mv.tar.xz"],
                    "sha256": sha(mvtec_bytes),
                },
                "vi": {
                    "kind": "visa",
                    "noise_ratio": 0.2,
                    "categories": CATEGORIES,
                    "filename": "vi.tar",
                    "urls": [f"{server.url}/v/vi.tar"],
                    "sha256": sha(visa_bytes),
                },
                "own": {
                    "kind": "mvtec",
                    "noise_ratio": 0.2,
                    "categories": CATEGORIES,
                    "archive": str(own_archive),
                    "urls": [f"{server.url}/never/asked.tar.xz"],
                    "sha256": sha(mvtec_bytes),
                },
            },
            "splits": {"source": "generated", "tails": ["step_k1"], "seeds": [1], "rules": {"tail_threshold": 4}},
            "features": dict(TINY_FEATURES),
            "methods": {"run": ["patchcore"], "threads": 1},
        }
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        targets = [
            "results/mv/index.csv",
            "results/own/index.csv",
            "results/vi/metrics/step_k1/seed1/model0/patchcore.csv",
        ]
        run = subprocess.run(
            [
                str(SNAKEMAKE),
                "-s",
                str(ROOT / "Snakefile"),
                "--directory",
                str(tmp_path),
                "--configfile",
                str(tmp_path / "config.yaml"),
                "--cores",
                "2",
                *targets,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        requested = [path for path, _ in server.requests]
    assert run.returncode == 0, run.stderr[-4000:]
    assert "/never/asked.tar.xz" not in requested  # an archive given by path is not downloaded
    assert requested.count("/v/vi.tar") == 2  # cut off once, then resumed
    assert "/dead/mv.tar.xz" in requested  # the dead mirror was tried first
    mv = pd.read_csv(tmp_path / "results" / "mv" / "index.csv")
    own = pd.read_csv(tmp_path / "results" / "own" / "index.csv")
    vi = pd.read_csv(tmp_path / "results" / "vi" / "index.csv")
    assert len(mv) == len(own) == len(vi) == 3 * (6 + 2 + 3)
    assert set(vi["label"]) == {"good", "bad"}
    metrics = pd.read_csv(tmp_path / "results" / "vi" / "metrics" / "step_k1" / "seed1" / "model0" / "patchcore.csv")
    pixel = metrics[metrics["metric"] == "pixel_auroc"]["value"]
    assert len(pixel) == 3 and pixel.between(0, 1).all()  # raw id-2 masks were binarised, not read as empty
