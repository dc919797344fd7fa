"""Image AUROC against time at several coreset ratios, on real images: ELPV's solar cells (the PyPI wheel
elpv-dataset), uncapped (every usable cell of both categories), at the custom template's geometry and backbone
(config/custom.yaml: pad 192 x 192, lite0, 256-d), one workflow run per ratio in one working directory, so the
features are computed once and each ratio reruns only its fits and what follows.

    python bench/ratio_curve.py                                  # ratios 0.01, 0.025, 0.05, 0.1; step K=4, seed 1
    python bench/ratio_curve.py --ratios 0.01,0.1 --tails step_k4,pareto --seeds 1,2

For every ratio and method it prints and writes (results/bench/ratio_curve.csv): the image AUROC (all, head and
tail classes), the measured seconds of its fit-and-score jobs (Snakemake's benchmark files) with their coreset,
filter and scoring parts (the job's own cost report), and the seconds `check`'s estimate gave for the same jobs
(the estimate's ratio measured / estimated is the figure for its accuracy).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("patchcore", "softpatch", "tailedcore")  # PaDiM keeps no coreset: its cost and AUROC do not move


def config_for(ratio: float, tails: list[str], seeds: list[int]) -> dict:
    template = yaml.safe_load((ROOT / "config" / "custom.yaml").read_text())
    methods = {m: {**(template["methods"].get(m) or {}), "coreset_ratio": ratio} for m in METHODS}
    return {
        "datasets": {"elpv": {"kind": "elpv", "noise_ratio": 0.1, "elpv": {"seed": 0}}},
        "splits": {"source": "generated", "tails": tails, "seeds": seeds, "exclude_injected_from_test": False},
        "features": template["features"],
        "methods": {"run": list(METHODS), "seeds": [0], "threads": template["methods"]["threads"], **methods},
        "evaluation": {"sigma": 4, "extra_metrics": False},
    }


def estimated_seconds(check: Path) -> dict[str, float]:
    """Per method, the seconds of its fits in check.md's estimate ('patchcore 42 s, softpatch 3.2 min, tailedcore
    1.1 h')."""
    text = check.read_text()
    found = re.search(r"fits [^:]*: (.*?)\)", text)
    if not found:
        raise SystemExit(f"{check}: no estimate of the fits found")
    out = {}
    for method, value, unit in re.findall(r"(\w+) ([\d.]+) (s|min|h)\b", found.group(1)):
        out[method] = float(value) * {"s": 1, "min": 60, "h": 3600}[unit]
    return out


def measured(work: Path, method: str) -> dict[str, float]:
    """Seconds of every fit-and-score job of ``method`` (benchmark files) and the parts its cost reports give."""
    seconds = [
        float(pd.read_csv(path, sep="\t")["s"].iloc[0])
        for path in (work / "results" / "benchmarks" / "fit_score" / "elpv").rglob(f"{method}.tsv")
    ]
    parts = {"coreset_seconds": 0.0, "filter_seconds": 0.0, "tail_sampler_seconds": 0.0, "score_seconds": 0.0}
    reports = list((work / "results" / "elpv" / "scores").rglob(f"{method}.json"))
    for path in reports:
        cost = json.loads(path.read_text()).get("cost", {})
        for key in ("coreset_seconds", "filter_seconds", "tail_sampler_seconds"):
            parts[key] += float(cost.get(key, 0.0))
        parts["score_seconds"] += float(cost.get("inference_seconds", 0.0))
    return {"jobs": len(seconds), "job_seconds": sum(seconds), **parts}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratios", default="0.01,0.025,0.05,0.1")
    parser.add_argument("--tails", default="step_k4")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--work", default="/tmp/tailedcore-ratio-curve")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    snakemake = Path(sys.executable).with_name("snakemake")
    rows = []
    for ratio in [float(r) for r in args.ratios.split(",")]:
        config = config_for(ratio, args.tails.split(","), [int(s) for s in args.seeds.split(",")])
        (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        started = time.perf_counter()
        subprocess.run(
            [str(snakemake), "-s", str(ROOT / "Snakefile"), "-d", str(work), "--configfile", "config.yaml"]
            + ["--cores", args.cores, "--quiet", "rules"],
            check=True,
            cwd=work,
        )
        wall = time.perf_counter() - started
        estimate = estimated_seconds(work / "results" / "elpv" / "check.md")
        auroc = pd.read_csv(work / "results" / "tables" / "elpv_image_auroc.csv")
        for method in METHODS:
            cells = auroc[auroc["method"] == method]
            row = {"ratio": ratio, "method": method, "wall_seconds_of_the_run": wall}
            for column in [c for c in cells.columns if c not in ("method",)]:
                row[f"image_auroc {column}"] = float(cells[column].mean()) if len(cells) else float("nan")
            row.update(measured(work, method))
            row["estimated_seconds"] = estimate.get(method, float("nan"))
            row["measured / estimated"] = row["job_seconds"] / row["estimated_seconds"]
            rows.append(row)
        table = pd.DataFrame(rows)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "ratio_curve.csv", index=False)
    print(f"written to {out / 'ratio_curve.csv'}")


if __name__ == "__main__":
    main()
