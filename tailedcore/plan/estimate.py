"""Time known before it is spent: the planned features and fits of one dataset on this machine and device,
from a cost model whose rates are measured here once (a few seconds) and cached, like the kNN backend choice.

The model, per fit with N training images of h x w patches (P = N h w), T test images (Q = T h w), d-dim
features and coreset ratio r:
  greedy coreset  g * a * P^1.6 * (r / 0.1)^0.55   (the deferred exact greedy; exponents measured in bench/)
  kNN scoring     2 Q B d / (F s)                  (B = memory-bank rows, F = the measured flat search FLOP/s)
  LOF denoising   c * h w * N^2                    (one N x N problem per patch position)
  features        images / (the measured images/s of the backbone at the geometry's size)
  every fit job   + the measured start of a job (Python, torch and the package imported)
``a``, ``F``, ``c`` and the feature and job rates are measured on this machine (synthetic points: no data is
needed before the run). Two factors are measured once on real patch features (ELPV, docs/performance.md) and
written here, because synthetic points cannot show them: ``g``, how much slower the greedy runs on real
features than on the calibration's points, and ``s``, how much faster the exact bound search (which ``auto``
chooses for a bank of real features) is than the flat one, by feature dimension and only for banks large
enough for it to win. TailedCore and SoftPatch keep the LOF's ``lof_keep_ratio`` of P for their coreset;
TailedCore adds the coreset of its tail images with their augmented views (whose features it computes at fit
time); PaDiM's per-position Gaussians are taken as free. Checked against measured runs in docs/performance.md.
On a GPU the greedy is a full update per centre (linear in r, no feature dependence: g = 1, exponent 1) and the
kNN a flat search (s = 1).

Over 300 lines: the model's terms, the calibration that measures their rates and the text that reads them
share one set of constants measured on real features; split up, they would drift apart.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..features.settings import FeatureSettings
from ..runtime.config import resolve_method
from ..runtime.io import atomic_text, cache_folder

log = logging.getLogger(__name__)
# The deferred greedy (tailedcore/samplers/deferred.py) on ELPV's real patch features (pad 192, lite0, 128-d
# projection; 100k, 300k and all 651k training patches, 1 % and 10 %, 2 threads): its seconds grow like P^1.6
# (1.57-1.76 at 10 %, 1.37-1.54 at 1 %) and like the ratio to the power 0.55 (0.39-0.58 from 1 % to 10 %), and
# run 0.9x the calibration's synthetic points extrapolated that way (0.78-1.14 over the six runs)
GREEDY_EXPONENT = 1.6
GREEDY_RATIO_EXPONENT = 0.55
REAL_GREEDY_FACTOR = 0.9
# TailedCore's tail branch takes the tail classes' images and about half of the injected ones (a defective image
# looks like a small class of its own: 18-53 % measured, docs/diagnostics.md)
TAIL_NOISE_SHARE = 0.5
# the bound search against the faster flat backend on a real 10 % bank, for banks of at least BOUND_BANK_ROWS rows
# (smaller: the flat search wins and auto takes it), by the precision of its product (bfloat16 where the CPU
# multiplies it fast, knn_bound._precision): bench knn_real measured, float32 2.0-2.7x at 256-d and 3.6-4.3x at
# 1024-d on two 2-core machines; bfloat16 2.9-3.3x and 5.6-6.5x on the 2-core AMD EPYC: the low ends, rounded
BOUND_SPEEDUP = {"float32": ((256, 2.0), (1024, 3.6)), "bfloat16": ((256, 2.8), (1024, 5.5))}
BOUND_BANK_ROWS = 16_384
# 10: the feature rate is the extractor's (forward and aggregation at the config's dimensions, untrained weights);
# 9: measured while the job holds a fit's threads (check_dataset: the coverage jobs beside it made the greedy's
# rate 2.2x slow); 8: the bound search's product precision; 7: the deferred greedy, P^1.6; 6: LOF measured at
# N = 800, greedy and LOF best of several
CALIBRATION_VERSION = 10


def _cache_file() -> Path:
    return cache_folder() / "cost_model.json"


def _machine_key(device: str, threads: int, backbone: str, shape) -> str:
    from ..runtime.compute import machine_name

    return f"v{CALIBRATION_VERSION}|{machine_name()}|{threads}t|{device}|{backbone}|{shape[0]}x{shape[1]}"


def measure_rates(device: str, threads: int, backbone: str | None, shape, dims=(1024, 1024)) -> dict:
    """The model's rates on this machine with a fit job's ``threads``: greedy ``a``, kNN FLOP/s, LOF ``c``,
    the feature rule's images/s (``backbone`` at ``shape``, patch features of ``dims`` = (pretrain_dim,
    target_dim)) and the start of a job."""
    import torch

    from ..features.knn import knn_search
    from ..runtime.compute import set_threads

    set_threads(threads)
    from ..samplers.greedy import greedy_kcenter
    from ..samplers.lof import local_outlier_factor

    rng = np.random.default_rng(0)
    points = (rng.normal(size=(40_000, 16)) @ rng.normal(size=(16, 128)) + rng.normal(size=(40_000, 128))).astype(
        np.float32
    )
    greedy_kcenter(points[:2_000], 200, 0, device=device)  # warm-up: the kernel's compile or cache load

    greedy_a = _best_of(3, lambda: greedy_kcenter(points, 4_000, 0, device=device)) / len(points) ** GREEDY_EXPONENT
    # kNN at a scoring job's shape (d = 256, a bank of 32k rows: a small search runs at a fraction of the rate a
    # job reaches, measured 24 against 100 GFLOP/s), the faster flat backend, interleaved, best of two. The
    # bound backend is left out here: how much of a bank it skips depends on the features, and these are not
    # real ones; its gain on real features is BOUND_SPEEDUP
    wide = np.concatenate([points, points[::-1]], axis=1)  # 256-d
    queries, memory = wide[:8192], wide[8192:40960]
    seconds = {}
    for name in ("torch", "faiss") * 2:
        try:
            knn_search(queries[:64], memory, backend=name, device=device)
            started = time.perf_counter()
            knn_search(queries, memory, backend=name, device=device)
            seconds[name] = min(seconds.get(name, np.inf), time.perf_counter() - started)
        except ImportError:  # no faiss
            continue
    knn_flops = 2.0 * len(queries) * len(memory) * memory.shape[1] / min(seconds.values())
    from ..runtime.compute import resolve_device

    # LOF in a fit's batch (N = 800 images per position, as many positions as positionwise_lof takes at once:
    # 8 positions of N = 400 ran at 1.6x a fit's rate per pair, out of cache less often)
    positions = 20_000_000 // 800**2
    batch = torch.from_numpy(rng.normal(size=(positions, 800, 128))).to(resolve_device(device))
    local_outlier_factor(batch[:1, :100], 6)
    lof_c = _best_of(2, lambda: local_outlier_factor(batch, 6)) / (positions * 800**2)
    images_per_second = image_rate(device, backbone, shape, dims) if backbone else None
    import subprocess
    import sys

    started = time.perf_counter()  # what every job pays before it computes: Python, torch, the package
    subprocess.run([sys.executable, "-c", "import torch, tailedcore.stages.methods"], check=False, timeout=300)
    job_seconds = time.perf_counter() - started
    from ..features.knn_bound import _precision

    return {
        "device": resolve_device(device).type,
        "bound_precision": _precision("auto", 96) if resolve_device(device).type == "cpu" else "float32",
        "greedy_a": greedy_a,
        "knn_flops": knn_flops,
        "lof_c": lof_c,
        "images_per_second": images_per_second,
        "job_seconds": job_seconds,
    }


def _best_of(runs: int, work) -> float:
    """The fastest of ``runs`` timings of ``work()``: contention only slows a run down, so the fastest is the rate."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def image_rate(device: str, backbone: str, shape, dims) -> float:
    """Images/s of the feature rule's compute: the forward and the patch aggregation at ``dims`` (at 1024-d the
    aggregation took longer than wide_resnet50_2's forward before it went channels-last), +25 % for decoding
    and writing. The architecture's initial weights: its arithmetic does not depend on their values, so a
    machine without the weights file (yet) gets its estimate too."""
    from ..features.backbones import untrained_backbone
    from ..features.cache import FeatureExtractor

    settings = FeatureSettings(backbone=backbone, pretrain_dim=dims[0], target_dim=dims[1], device=device)
    extractor = FeatureExtractor(settings, untrained_backbone(backbone))
    images = np.random.default_rng(0).integers(0, 256, size=(8, *shape, 3), dtype=np.uint8)
    extractor(images[:2])
    return len(images) / _best_of(2, lambda: extractor(images)) / 1.25


def rates(device: str, threads: int, backbone: str | None, shape, dims=(1024, 1024)) -> dict:
    """:func:`measure_rates`, measured once per machine, threads, device, backbone, size and dimensions, then
    cached."""
    name = f"{backbone}:{dims[0]}-{dims[1]}" if backbone else "-"
    path, key = _cache_file(), _machine_key(device, threads, name, shape)
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key not in cache:
        _warn_if_busy(path)
        cache[key] = measure_rates(device, threads, backbone, shape, dims)
        try:  # atomic: two jobs calibrating at once never leave half a file
            atomic_text(path, json.dumps(cache, indent=1, sort_keys=True))
        except OSError:
            pass  # a read-only home: measured again next time
    return cache[key]


def _warn_if_busy(path: Path) -> None:
    """A warning when other work holds the cores while the rates are measured: they would come out slow (a
    calibration under a test suite's load read 2x slow) and stay cached."""
    import os

    try:
        load = os.getloadavg()[0]
    except OSError:  # not on this platform
        return
    cores = os.cpu_count() or 1
    if load >= cores:
        log.warning(
            "cost model: calibrating while the machine is busy (load %.1f on %d cores): the estimates will be slow; "
            "delete %s and run check again on an idle machine",
            load,
            cores,
            path,
        )


def tail_view_count(kind: str) -> int:
    """Extra views per tail image (tailedcore.features.augment): rotflip 7, rot<N>flip 2 * 360 / N - 1."""
    if kind == "none":
        return 0
    if kind == "rotflip":
        return 7
    return 2 * 360 // int(kind.removeprefix("rot").removesuffix("flip")) - 1


def _on_cpu(r: dict) -> bool:
    """Whether the rates were measured for the CPU kernels (the clustered greedy, the bound search)."""
    return r.get("device", "cpu") == "cpu"


def greedy_seconds(points: float, ratio: float, r: dict) -> float:
    """Seconds of the greedy coreset of ``ratio`` of ``points`` real patch features."""
    factor, exponent = (REAL_GREEDY_FACTOR, GREEDY_RATIO_EXPONENT) if _on_cpu(r) else (1.0, 1.0)
    return factor * r["greedy_a"] * points**GREEDY_EXPONENT * (ratio / 0.1) ** exponent


def bound_speedup(bank: float, dim: int, precision: str = "float32") -> float:
    """How much faster than the flat search ``auto``'s exact search runs on a real bank: 1 below
    BOUND_BANK_ROWS, else BOUND_SPEEDUP of the bound's product ``precision`` interpolated in log d (held constant
    beyond the measured ends)."""
    if bank < BOUND_BANK_ROWS:
        return 1.0
    (d0, s0), (d1, s1) = BOUND_SPEEDUP[precision]
    share = float(np.clip(np.log(dim / d0) / np.log(d1 / d0), 0.0, 1.0))
    return float(s0 * (s1 / s0) ** share)


def knn_seconds(queries: float, bank: float, dim: int, r: dict) -> float:
    """Seconds of the exact 1-NN of ``queries`` test patches against a real bank of ``bank`` rows."""
    speedup = bound_speedup(bank, dim, r.get("bound_precision", "float32")) if _on_cpu(r) else 1.0
    return 2.0 * queries * bank * dim / (r["knn_flops"] * speedup)


def fit_parts(
    method: str,
    options: dict,
    *,
    n_train: int,
    n_tail: int,
    n_test: int,
    grid: int,
    dim: int,
    r: dict,
    n_noise: int = 0,
):
    """Seconds of one fit-and-score job of ``method`` (its config block ``options``), term by term: the greedy
    coreset (TailedCore: of its clean and tail branches), the kNN scoring, the LOF filter and the tail views (0
    where a method has no such part). ``n_noise``: the injected defective training images, of which
    TailedCore's tail branch takes TAIL_NOISE_SHARE."""
    terms = _fit_terms(
        method, options, n_train=n_train, n_tail=n_tail, n_test=n_test, grid=grid, dim=dim, r=r, n_noise=n_noise
    )
    terms["coreset"] += terms.pop("tail_coreset")
    return terms  # padim and rule baselines: per-position statistics, seconds


def _fit_terms(method: str, options: dict, *, n_train, n_tail, n_test, grid, dim, r, n_noise) -> dict:
    """:func:`fit_parts` with TailedCore's tail coreset apart (``tail_coreset``) from the coreset of the pool
    or of its filtered rows (``coreset``), which another fit may share (:func:`shared_steps`)."""
    ratio = options.get("coreset_ratio", 0.1)
    patches, queries = n_train * grid, n_test * grid
    parts = {"coreset": 0.0, "tail_coreset": 0.0, "scoring": 0.0, "filter": 0.0, "tail_views": 0.0}
    if method == "patchcore":
        parts.update(coreset=greedy_seconds(patches, ratio, r), scoring=knn_seconds(queries, ratio * patches, dim, r))
    elif method in ("softpatch", "tailedcore"):
        denoised = options.get("denoise", True)
        kept = options.get("lof_keep_ratio", 0.85) * patches if denoised else patches
        parts.update(filter=r["lof_c"] * grid * n_train**2 if denoised else 0.0, coreset=greedy_seconds(kept, ratio, r))
        if method == "softpatch" or options.get("tail_mode") == "none":
            parts["scoring"] = knn_seconds(queries, ratio * kept, dim, r)
        else:
            views = tail_view_count(options.get("tail_augmentation", "rot15flip"))
            taken = n_tail + TAIL_NOISE_SHARE * n_noise
            tail = taken * (views + 1) * grid  # the tail images and their augmented views, computed at fit time
            parts["tail_coreset"] = greedy_seconds(tail, ratio, r)
            parts["scoring"] = knn_seconds(queries, ratio * (kept + tail), dim, r)
            parts["tail_views"] = taken * views / r["images_per_second"] if r.get("images_per_second") else 0.0
    return parts


def shared_steps(method: str, options: dict) -> dict[str, tuple]:
    """The terms of a fit that another fit of the same split and model seed computes the same way, each with
    the identity of its computation (``methods.reuse_fits``, :mod:`tailedcore.runtime.reuse`): SoftPatch's
    LOF and filtered coreset are TailedCore's, PatchCore's coreset is that of TailedCore without its filter.
    The first fit with an identity computes it; the others read it back."""
    coreset = (options.get("coreset_ratio", 0.1), options.get("projection_dim", 128))
    if method == "patchcore" or (method in ("softpatch", "tailedcore") and not options.get("denoise", True)):
        return {"coreset": ("coreset", "all", *coreset)}
    if method in ("softpatch", "tailedcore"):
        lof = ("filter", options.get("lof_k", 6), options.get("lof_projection_dim", 128))
        return {"filter": lof, "coreset": ("coreset", lof, options.get("lof_keep_ratio", 0.85), *coreset)}
    return {}


def fit_seconds(method: str, options: dict, **sizes) -> float:
    """Seconds of one fit-and-score job of ``method``: the sum of :func:`fit_parts`."""
    return sum(fit_parts(method, options, **sizes).values())


def plan_seconds(
    *, sizes: pd.DataFrame, counts: tuple[int, int, int], features: FeatureSettings, methods: dict, rates_: dict
) -> dict:
    """Seconds of the planned work of one dataset. ``sizes``: one row per split (tail, seed) with its training
    images ``n_train``, tail-class training images ``n_tail`` and (optional) injected ones ``n_noise``;
    ``counts``: (all images, test images, categories: one feature job each); every fit runs once per model seed
    of ``methods``. With ``methods.reuse_fits`` (the default) a step that several fits of a split share is
    counted once, in the first method of ``methods.run`` that has it: the jobs compute it once when they run
    one after another (two that run at the same time both compute it)."""
    images, test_images, categories = counts
    model_seeds = len(methods.get("seeds", [0]))
    height, width = features.geometry.shape
    grid = int(np.ceil(height / 8) * np.ceil(width / 8))
    reuse = methods.get("reuse_fits", True)
    per_method = dict.fromkeys(methods["run"], 0.0)
    for row in sizes.itertuples():
        computed = set()  # the shared steps of this split a fit has computed (per model seed: the same)
        for method in methods["run"]:
            kind, options = resolve_method(methods, method)  # a variant: the method it changes, its options
            terms = _fit_terms(
                kind,
                options,
                n_train=int(row.n_train),
                n_tail=int(row.n_tail),
                n_noise=int(getattr(row, "n_noise", 0)),
                n_test=test_images,
                grid=grid,
                dim=features.target_dim,
                r=rates_,
            )
            for term, identity in (shared_steps(kind, options) if reuse else {}).items():
                if identity in computed:
                    terms[term] = 0.0  # read back from the fit that computed it
                computed.add(identity)
            per_method[method] += sum(terms.values()) + rates_.get("job_seconds", 0.0)
    per_method = {method: seconds * model_seeds for method, seconds in per_method.items()}
    rate = rates_.get("images_per_second")
    features_seconds = images / rate + categories * rates_.get("job_seconds", 0.0) if rate else float("nan")
    total = float(np.nansum([features_seconds])) + sum(per_method.values())
    return {"features": features_seconds, "fits": per_method, "total": total}


def _minutes(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    if seconds < 100:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def estimate_text(
    *, dataset: str, sizes: pd.DataFrame, counts: tuple[int, int, int], config: dict, rates_: dict
) -> str:
    """The estimate and the settings that would cut it most, as lines for the terminal and check.md."""
    features, methods = FeatureSettings.parse(config["features"]), config["methods"]
    model_seeds = len(methods.get("seeds", [0]))

    def plan(sizes_=sizes, features_=features, methods_=methods) -> dict:
        return plan_seconds(sizes=sizes_, counts=counts, features=features_, methods=methods_, rates_=rates_)

    base = plan()
    fits = len(sizes) * model_seeds * len(methods["run"])
    lines = [
        f"Estimated time of {dataset} on this machine ({config['methods'].get('device', 'cpu')}, "
        f"{config['methods'].get('threads', 1)} threads per fit): about {_minutes(base['total'])} of jobs "
        f"(features {_minutes(base['features'])}; {fits} fits {_minutes(sum(base['fits'].values()))}: "
        + ", ".join(f"{m} {_minutes(s)}" for m, s in base["fits"].items())
        + "), before dividing by the jobs that run at once."
    ]
    from ..reporting.paper import CORESET_METHODS, PAPER_CORESET_RATIO, coreset_departure

    departure = coreset_departure(methods)
    if departure:
        paper = {m: {**(methods.get(m) or {}), "coreset_ratio": PAPER_CORESET_RATIO} for m in CORESET_METHODS}
        paper_total = plan(methods_={**methods, **{m: o for m, o in paper.items() if m in methods["run"]}})["total"]
        lines.append(
            f"{departure} At the paper's ratio the same run would take about {_minutes(paper_total)}; the tables "
            "say so in their captions."
        )
    halved = {m: {**(methods.get(m) or {})} for m in methods["run"]}
    for options in halved.values():
        options["coreset_ratio"] = options.get("coreset_ratio", 0.1) / 2
    levers = {"coreset_ratio halved": plan(methods_={**methods, **halved})["total"]}
    geometry = features.geometry
    if geometry.mode == "crop":
        smaller = replace(geometry, crop=int(geometry.crop * 0.75), resize=int(geometry.resize * 0.75))
    else:
        smaller = replace(geometry, mode="resize", size=(int(geometry.shape[0] * 0.75), int(geometry.shape[1] * 0.75)))
    smaller = replace(features, geometry=smaller)
    levers["images 3/4 the size per side"] = plan(features_=smaller)["total"]
    seeds = sorted(sizes["seed"].unique())
    if len(seeds) > 1:
        fewer = sizes[sizes["seed"].isin(seeds[: len(seeds) // 2])]
        levers[f"{len(seeds) // 2} split seed(s) instead of {len(seeds)}"] = plan(sizes_=fewer)["total"]
    if model_seeds > 1:
        levers[f"1 model seed instead of {model_seeds}"] = plan(methods_={**methods, "seeds": [0]})["total"]
    best = sorted(levers.items(), key=lambda item: item[1])[:3]
    lines.append("What would cut it most: " + "; ".join(f"{name}: about {_minutes(s)}" for name, s in best) + ".")
    return "\n".join(lines)
