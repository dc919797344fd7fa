"""Exact greedy k-center coreset (docs/protocol.md §2.2).

Selection rule: start at ``start``; then repeatedly pick the point farthest from its nearest chosen centre
(first index on ties). Squared distances order points exactly like the Euclidean distances of the
original code, so the selection is the same.

Two exact implementations:

* CPU (:mod:`tailedcore.samplers.deferred`, numba, all threads): points grouped by their nearest centre, the
  next centre from a tournament tree over upper bounds of the cluster radii, and a cluster brought up to
  date (its members tested on every centre added since, with the triangle inequality and a 32-coordinate
  lower bound) only when it could hold the next centre. Its selection equals the full update
  (``prune=False``: :mod:`tailedcore.samplers.kcenter` with every skip off, the same arithmetic) and the
  clustered kernel of that module, index for index (unit tests and bench/).
* CUDA (``_greedy_torch``): the full update per iteration as one fused pass on the device, with no host
  synchronisation inside the loop (the next centre is a device tensor).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..runtime.compute import current_device, resolve_device, timed_part
from .deferred import greedy_deferred
from .kcenter import greedy_clusters

log = logging.getLogger(__name__)


def _as_parts(features) -> list[np.ndarray]:
    """Parts as (rows, width): arrays, memory maps, or patch rows read on demand (``features.rows.FlatRows``)."""
    parts = list(features) if isinstance(features, (list, tuple)) else [features]
    return [part if part.ndim == 2 else part.reshape(len(part), -1) for part in parts]


def take_rows(features, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 copy of ``rows`` (indices into the concatenation of ``features``' parts), in the given order;
    into ``out`` (len(rows), width) when given (a memory bank assembled in place)."""
    parts = _as_parts(features)
    offsets = np.cumsum([0] + [len(part) for part in parts])
    rows = np.asarray(rows, dtype=np.int64)
    if out is None:
        out = np.empty((len(rows), parts[0].shape[1]), dtype=np.float32)
    which = np.searchsorted(offsets, rows, side="right") - 1
    for number, part in enumerate(parts):
        hits = np.flatnonzero(which == number)
        if len(hits):
            local = rows[hits] - offsets[number]
            order = np.argsort(local, kind="stable")  # monotone reads from memory maps
            for start in range(0, len(order), 65536):  # bounded intermediate copies (a bank at paper scale: GBs)
                block = order[start : start + 65536]
                out[hits[block]] = part[local[block]]
    return out


def random_projection(features, dim: int, generator: torch.Generator, rows: np.ndarray | None = None) -> np.ndarray:
    """Project (P, D) -> (P, dim) with a bias-free linear map drawn like ``nn.Linear``'s default init
    (uniform in +-1/sqrt(D)) from ``generator``; identity when dim >= D.

    ``features`` may be one array or a list of parts (concatenated in order), of any float dtype (float16
    memory maps included); ``rows`` projects only those rows of the concatenation. Input is read in chunks,
    so only the (len(rows), dim) float32 result is ever held in full.
    """
    parts = _as_parts(features)
    in_dim = parts[0].shape[1]
    total = sum(len(part) for part in parts)
    rows = np.arange(total) if rows is None else np.asarray(rows, dtype=np.int64)
    weight = None
    if dim < in_dim:
        bound = 1.0 / np.sqrt(in_dim)
        weight = (torch.rand((dim, in_dim), generator=generator, dtype=torch.float64) * 2 - 1) * bound
        weight = weight.to(torch.float32).numpy().T
    out = np.empty((len(rows), dim if weight is not None else in_dim), dtype=np.float32)
    chunk = 65536
    for start in range(0, len(rows), chunk):
        block = take_rows(parts, rows[start : start + chunk])
        out[start : start + chunk] = block @ weight if weight is not None else block
    return out


def greedy_kcenter(
    points: np.ndarray,
    num_select: int,
    start: int,
    device: str | None = None,
    prune: bool = True,
    return_work: bool = False,
    progress: str = "",
):
    """Indices (in selection order) of the greedy k-center selection starting at ``start``.

    ``device``: cpu | cuda | auto; None = the process's (``compute.set_device``). ``prune=False`` is the
    reference: the full distance update every iteration with the same arithmetic. With ``return_work`` also
    returns the fraction of the P x M point distances actually computed. ``progress`` names the selection in
    the progress lines logged every 10 s (CPU).
    """
    num_points = len(points)
    if not 1 <= num_select <= num_points:
        raise ValueError(f"cannot select {num_select} of {num_points} points")
    if not 0 <= start < num_points:
        raise ValueError(f"start index {start} outside 0..{num_points - 1}")
    if resolve_device(device or current_device()).type == "cuda":
        selected, work = _greedy_torch(points, num_select, start, torch.device("cuda")), 1.0
    else:
        data = np.ascontiguousarray(points, dtype=np.float32)
        if prune:
            selected, computed = greedy_deferred(data, int(num_select), int(start), progress)
        else:
            selected, computed = greedy_clusters(data, int(num_select), int(start), False, progress)
        work = float(computed) / (num_points * num_select)
    return (selected, work) if return_work else selected


@torch.no_grad()
def _greedy_torch(points: np.ndarray, num_select: int, start: int, device: torch.device) -> np.ndarray:
    """Full update per iteration with torch (|x|^2 - 2 x.c + |c|^2, one fused pass); no host syncs."""
    data = torch.as_tensor(np.ascontiguousarray(points, dtype=np.float32), device=device)
    norms = (data * data).sum(dim=1)
    nearest = torch.full((len(data),), float("inf"), device=device)
    distances = torch.empty(len(data), device=device)
    selected = torch.empty(num_select, dtype=torch.int64, device=device)
    chosen = torch.tensor(int(start), device=device)
    for k in range(num_select):
        selected[k] = chosen
        centre = data.index_select(0, chosen.view(1))[0]
        torch.addmv(norms, data, centre, beta=1.0, alpha=-2.0, out=distances)
        distances += norms.index_select(0, chosen.view(1))
        torch.minimum(nearest, distances, out=nearest)
        nearest.index_fill_(0, chosen.view(1), 0.0)  # exact zero for the centre itself, whatever the rounding
        chosen = torch.argmax(nearest)
    return selected.cpu().numpy()


@timed_part("coreset")
def greedy_coreset(
    features,
    ratio: float,
    projection_dim: int,
    generator: torch.Generator,
    min_select: int = 1,
    device: str | None = None,
    rows: np.ndarray | None = None,
    progress: str = "greedy coreset",
) -> np.ndarray:
    """Greedy coreset of floor(ratio * P) rows (at least ``min_select``) on a random projection.

    ``features``/``rows`` as in ``random_projection`` (the P points are ``rows`` when given); returned
    indices count within those P points. Randomness (projection, then start index) comes from ``generator``.
    ``progress``: the name of this selection in the progress log.
    """
    projected = random_projection(features, projection_dim, generator, rows)
    num_points = len(projected)
    num_select = min(num_points, max(min_select, int(np.floor(ratio * num_points))))
    start = int(torch.randint(num_points, (1,), generator=generator).item())
    log.info("%s: %d of %d points (%d-d projection)", progress, num_select, num_points, projected.shape[1])
    return greedy_kcenter(projected, num_select, start, device=device, progress=progress)
