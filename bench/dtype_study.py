"""Does the float16 feature cache move any method's AUROC beyond model-seed noise? (docs/statistics.md, "Statistics")

    python bench/dtype_study.py [--tails step_k1] [--model-seeds 0,1,2] [--work /tmp/dtype-study]

Runs the quickstart twice (features.dtype float16 and float32) over every split seed and the given model
seeds, then compares, per method and group, the paired float16 - float32 difference of the per-run mean
image AUROC with the model-seed standard deviation. Prints a table and writes results/bench/dtype.csv.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tailedcore.evaluation.stats import t_interval  # noqa: E402


def run(work: Path, dtype: str, tails: list[str], model_seeds: list[int]) -> pd.DataFrame:
    config = yaml.safe_load((ROOT / "config" / "quickstart.yaml").read_text())
    config["features"]["dtype"] = dtype
    config["splits"]["tails"] = tails
    config["methods"]["seeds"] = model_seeds
    folder = work / dtype
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake = Path(sys.executable).with_name("snakemake")
    subprocess.run(
        [str(snakemake), "-s", str(ROOT / "Snakefile"), "-d", str(folder), "--configfile", "config.yaml"]
        + ["--cores", "2", "results/tables/synthetic_image_auroc_per_seed.csv"],
        check=True,
        cwd=folder,
    )
    return pd.read_csv(folder / "results" / "tables" / "synthetic_image_auroc_per_seed.csv")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tails", default="step_k1")
    parser.add_argument("--model-seeds", default="0,1,2")
    parser.add_argument("--work", default="/tmp/tailedcore-dtype-study")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench"))
    args = parser.parse_args()
    tails, seeds = args.tails.split(","), [int(s) for s in args.model_seeds.split(",")]
    runs = {dtype: run(Path(args.work), dtype, tails, seeds) for dtype in ("float16", "float32")}
    keys = ["method", "tail", "group", "seed", "model_seed"]
    both = runs["float16"].merge(runs["float32"], on=keys, suffixes=("_16", "_32"))
    rows = []
    for (method, tail, group), part in both.groupby(["method", "tail", "group"], sort=False):
        diff = (part["value_16"] - part["value_32"]).to_numpy()
        model_std = part.groupby("seed")["value_32"].std(ddof=1).mean()
        low, high = t_interval(diff)
        rows.append(
            {
                "method": method,
                "tail": tail,
                "group": group,
                "runs": len(part),
                "float32_mean": part["value_32"].mean(),
                "float16_mean": part["value_16"].mean(),
                "diff_mean": diff.mean(),
                "diff_ci_low": low,
                "diff_ci_high": high,
                "max_abs_diff": np.abs(diff).max(),
                "model_seed_std": model_std,
                "beyond_noise": bool(abs(diff.mean()) > model_std / np.sqrt(len(seeds)) and (low > 0 or high < 0)),
            }
        )
    table = pd.DataFrame(rows).round(3)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    table.to_csv(Path(args.out) / "dtype.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
