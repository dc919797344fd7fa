"""What every bench section shares: the result rows, their printing and a timer."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS: list[dict] = []


def record(section: str, figure: str, value: float, target: str = "", met: bool | None = None, detail: str = ""):
    ROWS.append(
        {
            "section": section,
            "figure": figure,
            "value": round(float(value), 4),
            "target": target,
            "met": "" if met is None else ("yes" if met else "NO"),
            "detail": detail,
        }
    )
    mark = "" if met is None else ("  [met]" if met else "  [NOT MET]")
    print(f"  {section:9s} {figure:44s} {value:12.4g}  {target:8s}{mark}  {detail}", flush=True)


def timed(fn, *args, repeat: int = 1, **kwargs):
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best, out
