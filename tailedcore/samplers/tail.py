"""TailSampler (docs/protocol.md §2.4): estimate each image's class size from global embeddings, flag the tail.

The default mode ``ada_trim_min-mode`` is the official code's: similarities on a 1/N grid, a per-image
adaptive threshold (the most similar 85 % of the half-angle neighbourhood), a class-size vote that takes
the mode over the *reverse* neighbours, the inductive class-size list, and a tail cut that is the smaller
of the elbow of that list and a 15 % mass cap. ``vote: forward`` is the paper's text; ``symmin`` the
legacy global threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..runtime.compute import timed_part

TAIL_CUTS = ("min", "elbow", "cap")


@dataclass(frozen=True)
class TailSamplerConfig:
    mode: str = "ada_trim_min"  # ada_trim_min | symmin
    vote: str = "reverse"  # reverse (official code) | forward (paper text); symmin always votes by mean
    trim_percentile: float = 0.85
    mass_cap: float = 0.15
    quantise: bool = True
    cut: str = "min"  # the tail threshold rule K*: min(elbow, cap) (the paper) | elbow | cap

    def __post_init__(self):
        if self.cut not in TAIL_CUTS:
            raise ValueError(f"unknown tail cut {self.cut!r}; choose from {TAIL_CUTS}")


@dataclass
class TailEstimate:
    class_sizes: np.ndarray  # kappa_j, the estimated class size of each image
    size_list: list[int]  # eta, descending
    elbow: int
    cap: int
    cut: int  # K* = min(elbow, cap) (or one of them: TailSamplerConfig.cut)
    tail_mask: np.ndarray  # kappa_j <= K*


def _round_half_even(values: np.ndarray) -> np.ndarray:
    return np.round(values)  # numpy rounds half to even, like torch.round and Python's round


def _mode_per_row(values: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """For each row r: the most frequent ``values[i]`` over the i with membership[r, i]; ties -> smallest
    (like ``scipy.stats.mode``); a row without members keeps its own value."""
    distinct, which = np.unique(values, return_inverse=True)
    which = which.reshape(-1)
    mode = np.array(values, copy=True)
    for row, members in enumerate(np.asarray(membership, dtype=bool)):
        if members.any():
            mode[row] = distinct[np.bincount(which[members], minlength=len(distinct)).argmax()]
    return mode


def similarity_matrix(embeddings: np.ndarray) -> torch.Tensor:
    emb = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
    emb = emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return emb @ emb.T


def adaptive_neighbourhoods(sim: torch.Tensor, trim_percentile: float, quantise: bool) -> np.ndarray:
    """A_ij = 1 when S_ij >= t_i (the trimmed half-angle threshold of image i), all rows at once."""
    num = sim.shape[0]
    q = torch.trunc(sim * num) / num if quantise else sim.clone()
    row_min = q.min(dim=1).values
    half = torch.cos(torch.arccos(row_min.clamp(-1, 1)) / 2)
    inside = (q > half[:, None]).sum(dim=1)  # L_i, the half-angle neighbourhood (includes i)
    k = torch.floor(trim_percentile * inside.to(torch.float64)).to(torch.int64)
    position = (k - 1).clamp_min(0)  # k-th largest (1-indexed); k = 0 -> the single value
    threshold = torch.sort(q, dim=1, descending=True).values.gather(1, position[:, None])[:, 0]
    return (sim >= threshold[:, None]).numpy()


def class_size_list(kappa: np.ndarray) -> list[int]:
    """The inductive class-size list eta (descending; sums to N)."""
    remaining = np.sort(np.maximum(_round_half_even(kappa), 1).astype(np.int64))
    sizes: list[int] = []
    while len(remaining):
        if len(remaining) < remaining[0]:
            if sizes:
                sizes[-1] += len(remaining)
            else:
                sizes.append(len(remaining))
            break
        eta = int(min(_round_half_even(np.mean(remaining[: remaining[0]])), len(remaining)))
        sizes.append(eta)
        remaining = remaining[eta:]
    return sorted(sizes, reverse=True)


def tail_cut(sizes: list[int], mass_cap: float) -> tuple[int, int]:
    """(elbow, cap) of a descending size list."""
    eta = np.asarray(sizes, dtype=np.float64)
    if len(eta) == 1 or eta[0] == eta[-1]:
        elbow = int(eta[0])
    else:
        t = np.arange(len(eta), dtype=np.float64)
        x0, y0, x1, y1 = 0.0, eta[0], t[-1], eta[-1]
        distance = np.abs((y1 - y0) * t - (x1 - x0) * eta + x1 * y0 - y1 * x0) / np.hypot(y1 - y0, x1 - x0)
        elbow = int(eta[int(np.argmax(distance))])
    budget = int(np.floor(mass_cap * eta.sum()))
    count = int((np.cumsum(eta[::-1]) <= budget).sum())
    cap = int(eta[min(len(eta) - count, len(eta) - 1)])
    return elbow, cap


@timed_part("tail_sampler")
def estimate_tail(embeddings: np.ndarray, config: TailSamplerConfig = TailSamplerConfig()) -> TailEstimate:
    sim = similarity_matrix(embeddings)
    if config.mode == "ada_trim_min":
        member = adaptive_neighbourhoods(sim, config.trim_percentile, config.quantise)  # member[i, j]: j in N(i)
        sizes_c = member.sum(axis=1)
        if config.vote == "reverse":
            kappa = _mode_per_row(sizes_c, member.T).astype(np.float64)  # over i with j in N(i)
        elif config.vote == "forward":
            kappa = _mode_per_row(sizes_c, member).astype(np.float64)  # over the members of N(j)
        else:
            raise ValueError(f"unknown TailSampler vote {config.vote!r}; use 'reverse' or 'forward'")
    elif config.mode == "symmin":
        threshold = torch.cos(torch.arccos(sim.min().clamp(-1, 1)) / 2)
        member = (sim >= threshold).numpy()
        sizes_c = member.sum(axis=1)
        kappa = (member * sizes_c[None, :]).sum(axis=1) / np.maximum(member.sum(axis=1), 1)
    else:
        raise ValueError(f"unknown TailSampler mode {config.mode!r}; use 'ada_trim_min' or 'symmin'")
    sizes = class_size_list(kappa)
    elbow, cap = tail_cut(sizes, config.mass_cap)
    cut = {"min": min(elbow, cap), "elbow": elbow, "cap": cap}[config.cut]
    return TailEstimate(class_sizes=kappa, size_list=sizes, elbow=elbow, cap=cap, cut=cut, tail_mask=kappa <= cut)
