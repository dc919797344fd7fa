"""Speed and memory of every heavy stage, each as a RATIO against a reference measured in the same run.

    python bench/run.py                       # all sections, CPU (about 25 minutes on 2 cores, 21 GB scratch disk)
    python bench/run.py --sections greedy,knn # some sections
    python bench/run.py --device cuda --scale 4   # larger sizes on the GPU (bench/gpu_check.sh)

Each section is one module of bench/sections/ (shared helpers in bench/common.py); this file only runs them.
Prints one table and writes results/bench/<section>.csv (figure, value, target, met, detail). Absolute
times on a shared machine are noise; the ratios are the figures. Identity of results is asserted here
and in the unit tests.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py, reference.py and sections/

from common import ROOT, ROWS  # noqa: E402

from tailedcore.runtime.compute import set_threads  # noqa: E402

# section -> (module under bench/sections/, what its bench_<module> function takes besides args)
SECTIONS = {
    "index": ("index", ["work"]),
    "greedy": ("greedy", ["patches"]),
    "greedy_real": ("greedy", []),  # bench_greedy_real: ELPV's real features (bench/real.py)
    "knn": ("knn", ["patches"]),
    "knn_real": ("knn", []),  # bench_knn_real: ELPV's real features (bench/real.py)
    "lof": ("lof", ["patches"]),
    "tail": ("tail", []),
    "memory": ("memory", ["work"]),
    "pixels": ("pixels", ["work"]),
    "estimate": ("estimate", []),
    "diagnostics": ("diagnostics", ["work"]),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sections",
        default="index,features,greedy,greedy_real,knn,knn_real,lof,tail,estimate,pixels,memory,diagnostics",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--scale", type=int, default=1, help="multiply the problem sizes (GPU runs)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--greedy-sizes", default="200000,1000000", help="points of each greedy run (M = P / 10)")
    parser.add_argument(
        "--memory-sizes", default="750000,3370000", help="training patches of each memory run (3.37 M: VisA step)"
    )
    parser.add_argument("--memory-ratio", type=float, default=0.1, help="coreset ratio of the memory runs")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench"))
    parser.add_argument("--pixel-count", type=int, default=500_000_000, help="native pixels of the pixels section")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pixels-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pixels_child:
        from sections.pixels import pixels_child

        pixels_child(args.pixels_child, args.threads, Path(args.workdir))
        return
    if args.memory_child:
        from sections.memory import memory_child

        memory_child(args.memory_child, args.threads, Path(args.workdir), args.memory_ratio)
        return
    set_threads(args.threads)
    sections = args.sections.split(",")
    print(
        f"tailedcore bench: {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"device {args.device}, "
        f"torch {torch.__version__}, sections {sections}"
    )
    with tempfile.TemporaryDirectory(prefix="tailedcore-bench-") as tmp:
        work = Path(tmp)
        patches = None
        if {"features", "greedy", "knn", "lof"} & set(sections):
            from sections.features import bench_features

            patches = bench_features(args, work)  # real patch features for the later sections
        for name in sections:
            if name == "features":
                continue
            if name not in SECTIONS:
                raise SystemExit(f"unknown section {name!r}; choose from features, {', '.join(SECTIONS)}")
            module, needs = SECTIONS[name]
            run = getattr(importlib.import_module(f"sections.{module}"), f"bench_{name}")
            run(args, *[{"patches": patches, "work": work}[need] for need in needs])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(ROWS)
    table.insert(0, "device", args.device)
    table.insert(1, "threads", args.threads)
    for section, part in table.groupby("section", sort=False):
        part.to_csv(out / f"{section}{'' if args.device == 'cpu' else '_' + args.device}.csv", index=False)
    missed = table[table["met"] == "NO"]
    print(
        f"\n{len(table)} figures written to {out}; targets met: {(table['met'] == 'yes').sum()}, missed: {len(missed)}"
    )


if __name__ == "__main__":
    main()
