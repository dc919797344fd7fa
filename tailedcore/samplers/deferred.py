"""Exact greedy k-center on the CPU with deferred cluster updates (numba): the default CPU kernel.

The selection is the farthest-first rule of :mod:`tailedcore.samplers.kcenter` (first index on ties, float32
squared distances computed by the same ``_sqdist``), and its clusters are the same idea: every point belongs
to the cluster of its nearest centre. What differs is when a cluster learns of a new centre. The clustered
kernel tests every earlier cluster against each new centre at once; here a cluster is brought up to date
only when it could hold the next centre:

* each cluster keeps an upper bound on its members' distances (its key in a tournament tree, with the index
  of its farthest member for ties); distances only shrink as centres are added, so a stale key is never
  below the truth (nor is its index above the true one's: a member that keeps the key's distance has a
  larger index), and the next centre lies in the cluster at the top of the tree once that cluster is up to
  date;
* bringing a cluster up to date (a refresh) tests its members against every centre added since its last
  refresh, in one pass over the members held in a small local buffer: per pending centre the triangle test
  (a member ``i`` of cluster ``j`` can only move to ``c`` if ``|c - c_j| < 2 |i - c_j|``) on the members
  sorted by distance, the 32-coordinate lower bound, and the exact distance only for what both let through;
  members that arrived later are not tested again on the centres they have already seen (a per-point stamp).

So a member is read once per refresh and compared with hundreds or thousands of pending centres from the
caches, where the clustered kernel reads it from memory for each new centre whose test it passes (on 300k
real patch features at 10 % it visits a third of all point-centre pairs, each a cache miss). The margins are
the clustered kernel's, so the selection equals its selection and the full update's (``kcenter.greedy_clusters``
with ``prune=False``), index for index (tests and ``bench/``). The refresh's centre tests and member scans
run on all threads (members dealt round-robin to the threads, each thread's share still sorted).

Over 300 lines: the refresh, its buffers, the tree and the moves keep one set of invariants (keys never below
the truth, stamps, sorted shares); split up, they could drift apart.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from .kcenter import (
    BOUND_GROW,
    BOUND_SHRINK,
    EMPTY_INDEX,
    SHRINK,
    _better,
    _first_centre,
    _prefetch,
    _sqdist,
    _tree_set,
    bound_coordinates,
    run_in_batches,
)

PREFETCH = 8  # members ahead whose bound coordinates, stamp and point the layout asks the CPU to fetch
PARALLEL_SCAN = 4096  # a refresh scans on all threads when members x passing centres reaches this
PARALLEL_TESTS = 1024  # ... and tests the pending centres on all threads when there are this many


class DeferredState(NamedTuple):
    """The kernel's arrays, by name (numba compiles a NamedTuple of arrays like a tuple)."""

    nearest: np.ndarray  # (P,) float32: each point's distance to the nearest centre it has been tested on
    head: np.ndarray  # (M,) int64: first member of each cluster (-1: empty), a doubly linked list
    nxt: np.ndarray  # (P,) int64: next member of the same cluster
    prv: np.ndarray  # (P,) int64: previous member
    stamp: np.ndarray  # (P,) int64: the point has been tested on every centre below this
    since: np.ndarray  # (M,) int64: every member of the cluster has been tested on every centre below this
    tree_val: np.ndarray  # (2S,) float32: the tournament tree over the clusters' keys (upper bounds)
    tree_idx: np.ndarray  # (2S,) int64: ... and the point of each (ties: first index)
    selected: np.ndarray  # (M,) int64: the centres, in selection order
    centre_rot: np.ndarray  # (M, 32) float32: the centres' bound coordinates
    centre_pts: np.ndarray  # (M, d) float32: the centres
    ids: np.ndarray  # (P,) int64: a refresh's members (dealt to the threads, each share sorted)
    dj: np.ndarray  # (P,) float32: their distance to their cluster's centre
    nl: np.ndarray  # (P,) float32: their nearest so far in this refresh
    lim: np.ndarray  # (P,) float32: the bound's cut for nl (BOUND_GROW and the slack included)
    st: np.ndarray  # (P,) int64: their stamps
    owner: np.ndarray  # (P,) int64: the centre they move to (their cluster: they stay)
    local_rot: np.ndarray  # (P, 32) float32: their bound coordinates
    order: np.ndarray  # (P,) int64: scratch for the sort
    pass_k: np.ndarray  # (M,) int64: the pending centres that pass the cluster test
    pass_q: np.ndarray  # (M,) float32: |c - c_j|^2 / 4 (with margin) for each
    pass_flag: np.ndarray  # (M,) float32: per pending centre, q or -1 (fails)
    share: np.ndarray  # (T + 1,) int64: where each thread's members start in the local buffers
    counters: np.ndarray  # (T, 5) int64: exact distances, member tests, centre tests, refreshes, threaded scans


@njit(inline="always")
def _cut(nearest, slack):
    """The bound test of ``kcenter._may_improve`` as a precomputed cut on the partial squared distance."""
    grown = nearest * BOUND_GROW
    return grown + slack * (grown + np.float32(1.0)) + slack * slack


@njit(fastmath=True, inline="always")
def _scan(points, a, thread, npass, slack):
    """One thread's share of a refresh: its members (sorted by distance to their centre) against every
    pending centre that passed the cluster test."""
    ids, dj, nl, lim, st, owner, local_rot = a.ids, a.dj, a.nl, a.lim, a.st, a.owner, a.local_rot
    centre_rot, centre_pts = a.centre_rot, a.centre_pts
    lo, hi = a.share[thread], a.share[thread + 1]
    width = local_rot.shape[1]
    exact, tested = 0, 0
    for i in range(npass):
        k, q = a.pass_k[i], a.pass_q[i]
        m = lo
        while m < hi and dj[m] > q:
            total = np.float32(0.0)
            for t in range(width):
                gap = local_rot[m, t] - centre_rot[k, t]
                total += gap * gap
            if total < lim[m] and st[m] <= k:
                exact += 1
                distance = _sqdist(points[ids[m]], centre_pts[k])
                if distance < nl[m]:
                    nl[m] = distance
                    owner[m] = k
                    lim[m] = _cut(distance, slack)
            m += 1
        tested += m - lo
    return exact, tested


@njit(parallel=True, fastmath=True, cache=True)
def _scan_all(points, a, threads, npass, slack):  # pragma: no cover - compiled by numba
    counts = np.zeros((threads, 2), np.int64)
    for thread in prange(threads):
        exact, tested = _scan(points, a, thread, npass, slack)
        counts[thread, 0] = exact
        counts[thread, 1] = tested
    for thread in range(threads):
        a.counters[0, 0] += counts[thread, 0]
        a.counters[0, 1] += counts[thread, 1]


@njit(fastmath=True, inline="always")
def _centre_range(a, j, span, cuts):
    """pass_flag[k - first] = |c_k - c_j|^2 / 4 (with margin) for the pending centres k in begin .. end - 1 that
    may take a member of cluster j (the bound first, then the exact distance), -1 for the others; ``span =
    (first, begin, end)``, ``cuts = (radius, threshold)``: the cluster's radius and its bound's cut."""
    first, begin, end = span
    radius, threshold = cuts
    centre_rot, centre_pts, flag = a.centre_rot, a.centre_pts, a.pass_flag
    width = centre_rot.shape[1]
    for k in range(begin, end):
        bound = np.float32(0.0)
        for t in range(width):
            gap = centre_rot[k, t] - centre_rot[j, t]
            bound += gap * gap
        flag[k - first] = np.float32(-1.0)
        if bound < threshold:
            q = _sqdist(centre_pts[j], centre_pts[k]) * SHRINK
            if q < radius:
                flag[k - first] = q


@njit(parallel=True, fastmath=True, cache=True)
def _centre_tests(a, j, span, cuts):  # pragma: no cover - compiled by numba
    """_centre_range over ``span = (first, last, chunks)`` on all threads."""
    first, last, chunks = span
    step = (last - first + chunks - 1) // chunks
    for chunk in prange(chunks):
        _centre_range(a, j, (first, first + chunk * step, min(last, first + chunk * step + step)), cuts)


@njit(cache=True)
def _unlink(a, j, x):  # pragma: no cover - compiled by numba
    if a.prv[x] >= 0:
        a.nxt[a.prv[x]] = a.nxt[x]
    else:
        a.head[j] = a.nxt[x]
    if a.nxt[x] >= 0:
        a.prv[a.nxt[x]] = a.prv[x]


@njit(cache=True)
def _link(a, j, x):  # pragma: no cover - compiled by numba
    a.prv[x] = -1
    a.nxt[x] = a.head[j]
    if a.head[j] >= 0:
        a.prv[a.head[j]] = x
    a.head[j] = x


@njit(fastmath=True, cache=True)
def _refresh(points, rot, a, job, knobs):  # pragma: no cover - compiled by numba
    """Test cluster j's members on the centres since[j] .. total - 1, move what moves, set j's key; ``job = (j,
    total)``, ``knobs = (slack, threads, cutoffs)``."""
    j, total = job
    slack, threads, cutoffs = knobs
    size = len(a.tree_val) // 2
    radius = a.tree_val[size + j]
    threshold = (np.sqrt(radius / BOUND_SHRINK) + slack) ** 2 if radius > 0 else np.float32(-1.0)
    first = a.since[j]
    a.counters[0, 2] += total - first
    a.counters[0, 3] += 1
    # the members and their distances, sorted by distance (largest first, then index)
    n = 0
    x = a.head[j]
    while x >= 0:
        a.order[n] = x
        a.dj[n] = a.nearest[x]
        n += 1
        x = a.nxt[x]
    npass = 0
    if radius > 0 and n > 0:
        if total - first >= cutoffs[1] and threads > 1:
            _centre_tests(a, j, (first, total, threads), (radius, threshold))
        else:
            _centre_range(a, j, (first, first, total), (radius, threshold))
        for k in range(first, total):
            if a.pass_flag[k - first] >= 0:
                a.pass_k[npass] = k
                a.pass_q[npass] = a.pass_flag[k - first]
                npass += 1
    if npass > 0:
        sort = np.argsort(-a.dj[:n])  # the order among equal distances changes nothing: tests are per member
        members = a.order[:n][sort]
        values = a.dj[:n][sort]
        used = threads if n * npass >= cutoffs[0] and n >= 2 * threads else 1
        a.share[0] = 0
        for t in range(used):  # member r goes to thread r % used: each thread's share stays sorted
            a.share[t + 1] = a.share[t] + (n - t + used - 1) // used
        flat = rot.reshape(-1)
        flat_points = points.reshape(-1)
        for r in range(n):
            if r + PREFETCH < n:  # the members lie anywhere in the pool: fetch a later one's row now
                ahead = members[r + PREFETCH]
                _prefetch(flat, ahead * rot.shape[1])
                _prefetch(flat, ahead * rot.shape[1] + 16)
                _prefetch(a.stamp, ahead)
                for line in range(points.shape[1] // 16):
                    _prefetch(flat_points, ahead * points.shape[1] + 16 * line)
            slot = a.share[r % used] + r // used
            x = members[r]
            a.ids[slot] = x
            a.dj[slot] = values[r]
            a.nl[slot] = values[r]
            a.lim[slot] = _cut(values[r], slack)
            a.st[slot] = a.stamp[x]
            a.owner[slot] = j
            for t in range(rot.shape[1]):
                a.local_rot[slot, t] = rot[x, t]
        if used > 1:
            a.counters[0, 4] += 1
            _scan_all(points, a, used, npass, slack)
        else:
            exact, tested = _scan(points, a, 0, npass, slack)
            a.counters[0, 0] += exact
            a.counters[0, 1] += tested
    else:  # nothing can move: the members stay, in list order
        for r in range(n):
            a.ids[r] = a.order[r]
            a.owner[r] = j
            a.nl[r] = a.dj[r]
    # apply: movers leave j for their new clusters; the key of j from its stayers
    best_v, best_i = np.float32(-1.0), EMPTY_INDEX
    for r in range(n):
        x = a.ids[r]
        a.stamp[x] = total
        o = a.owner[r]
        if o == j:
            if _better(a.nl[r], x, best_v, best_i):
                best_v, best_i = a.nl[r], x
            continue
        a.nearest[x] = a.nl[r]
        _unlink(a, j, x)
        _link(a, o, x)
        if _better(a.nl[r], x, a.tree_val[size + o], a.tree_idx[size + o]):
            _tree_set(a.tree_val, a.tree_idx, o, a.nl[r], x)
    a.since[j] = total
    _tree_set(a.tree_val, a.tree_idx, j, best_v, best_i)


@njit(cache=True)
def _steps(points, rot, a, state, knobs):  # pragma: no cover - compiled by numba
    """Selections until ``state[0]`` (centres chosen) reaches ``state[1]``."""
    size = len(a.tree_val) // 2
    while state[0] < state[1]:
        total = state[0]
        node = 1  # the leaf of the tree's winner: its cluster
        while node < size:
            left = 2 * node
            node = left if a.tree_val[left] == a.tree_val[node] and a.tree_idx[left] == a.tree_idx[node] else left + 1
        j = node - size
        if a.since[j] < total:
            _refresh(points, rot, a, (j, total), knobs)
            continue
        # up to date: its farthest member is the next centre; the key of j stays an upper bound
        x = a.tree_idx[1]
        a.selected[total] = x
        a.centre_rot[total] = rot[x]
        a.centre_pts[total] = points[x]
        _unlink(a, j, x)
        a.nearest[x] = 0.0
        a.head[total] = -1
        _link(a, total, x)
        a.stamp[x] = total + 1
        a.since[total] = total + 1
        _tree_set(a.tree_val, a.tree_idx, total, np.float32(0.0), x)
        state[0] = total + 1


def greedy_deferred(points: np.ndarray, num_select: int, start: int, progress: str = "", details: bool = False):
    """(selected indices, exact distances computed) of the exact greedy; ``progress`` names it in the log;
    ``details`` adds the counters (member tests, centre tests, refreshes, threaded scans) for the bench."""
    num = len(points)
    threads = numba.get_num_threads()
    rot, slack = bound_coordinates(points)
    nearest = np.empty(num, np.float32)
    _first_centre(points, start, nearest, max(1, 4 * threads))
    size = 1 << max(0, int(num_select - 1).bit_length())
    a = DeferredState(
        nearest=nearest,
        head=np.full(num_select, -1, np.int64),
        nxt=np.append(np.arange(1, num, dtype=np.int64), -1),
        prv=np.arange(-1, num - 1, dtype=np.int64),
        stamp=np.ones(num, np.int64),
        since=np.zeros(num_select, np.int64),
        tree_val=np.full(2 * size, -1.0, np.float32),
        tree_idx=np.full(2 * size, EMPTY_INDEX, np.int64),
        selected=np.empty(num_select, np.int64),
        centre_rot=np.empty((num_select, rot.shape[1]), np.float32),
        centre_pts=np.empty((num_select, points.shape[1]), np.float32),
        ids=np.empty(num, np.int64),
        dj=np.empty(num, np.float32),
        nl=np.empty(num, np.float32),
        lim=np.empty(num, np.float32),
        st=np.empty(num, np.int64),
        owner=np.empty(num, np.int64),
        local_rot=np.empty((num, rot.shape[1]), np.float32),
        order=np.empty(num, np.int64),
        pass_k=np.empty(num_select, np.int64),
        pass_q=np.empty(num_select, np.float32),
        pass_flag=np.empty(num_select, np.float32),
        share=np.zeros(threads + 1, np.int64),
        counters=np.zeros((threads, 5), np.int64),
    )
    a.head[0] = 0
    a.selected[0] = start
    a.centre_rot[0], a.centre_pts[0] = rot[start], points[start]
    a.since[0] = 1
    best = int(np.argmax(nearest))  # first index on ties
    _tree_set(a.tree_val, a.tree_idx, 0, nearest[best], best)
    state = np.array([1, 1], np.int64)  # centres chosen, stop
    cutoffs = np.array([PARALLEL_SCAN, PARALLEL_TESTS], np.int64)
    knobs = (np.float32(slack), threads, cutoffs)

    def run(done, stop):  # state[0] is done; _steps selects until it reaches stop
        state[1] = stop
        _steps(points, rot, a, state, knobs)

    run_in_batches(num_select, progress, run)
    computed = int(num + a.counters[:, 0].sum())  # the first centre's full pass and the exact distances after
    if details:
        counts = a.counters.sum(axis=0)
        names = ("member_tests", "centre_tests", "refreshes", "threaded")
        return a.selected, computed, {name: int(value) for name, value in zip(names, counts[1:])}
    return a.selected, computed
