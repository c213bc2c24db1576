"""Compiled kernel for the exact Clauset-Shalizi-Newman xmin scan.

Every candidate xmin gets its MLE alpha from suffix sums (in `continuous.py`); this module finds the
KS distance of each candidate by branch and bound. The best distance achieved so far, D*, bounds the
answer: a candidate whose deviation at any single point exceeds D* cannot win. So each candidate is
first tested at a few "witness" points (where recent candidates were beaten: neighbouring
candidates have nearly the same CDFs, so the same points beat them), then swept, and the sweep
stops as soon as its running maximum exceeds D* or the rest of its tail cannot raise the maximum
(its value is then proven). Both CDFs rise, so the deviation on a block of points is bounded by
the CDFs at the block's ends: the sweep gallops over blocks that cannot matter and looks at single
points only where the deviation comes near the threshold. The winner is exact; pruned candidates
carry lower bounds, marked as such.

The empirical CDF is the one `powerlaw` uses: at each unique tail value u, the fraction of the tail
strictly below u. On tied data (bf16 activations) that can be far below the two-sided supremum;
`two_sided` gives the points on which the same kernels compute that supremum instead. Compiled with
numba (`cache=True`, no `parallel=True`, so no threading layer is involved and the kernel is safe
inside process pools and beside torch).

Compilation and its cache. The kernels compile lazily, on the first fit (importing zipfstage for
`plot` or `report` compiles nothing), each for the one signature it is called with (the witness
slot passed to `attempt` is kept from being a literal, which would compile a second copy), and
what numba compiles slowly stays in numpy (`ks_scan` picks the seed candidates, whose np.unique
and np.append took seconds to compile). `cache=True` keeps the result: numba writes it to
__pycache__ beside this file when that folder is writable and otherwise, as in a read-only
site-packages, to its per-user folder (the user cache directory's `numba`, or NUMBA_CACHE_DIR).
zipfstage deliberately does not set NUMBA_CACHE_DIR itself: numba reads it once, when numba is
first imported, so a library setting it would either come too late or change where every other
numba user in the process caches; the variable remains the user's (and a container's) choice.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: candidates evaluated in full first, to seed the bound
N_SEED = 64
#: how many recent witness points each candidate is tested at before its scan
N_WITNESS = 8
#: evenly spaced points that seed a candidate's running maximum before its sweep
N_PROBE = 32
#: rounding margin on block bounds (model CDF values are exact to a few 1e-16)
SLACK = 1e-13


@njit(cache=True, nogil=True)
def suffix_sums(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Sums of values[i:] for each i in `at` (ascending): one backward pass, no full cumsum array.

    Added in the same order as `np.cumsum(values[::-1])`, so the sums are bit for bit the same."""
    out = np.empty(at.shape[0])
    total = 0.0
    i = values.shape[0]
    for m in range(at.shape[0] - 1, -1, -1):
        while i > at[m]:
            i -= 1
            total += float(values[i])
        out[m] = total
    return out


@njit(cache=True, nogil=True)
def deviation(
    log_u: np.ndarray,
    first: np.ndarray,
    j: int,
    k: int,
    inv_tail: float,
    log_xmin: float,
    beta: float,
    inv_norm: float,
) -> float:
    """|model CDF - empirical CDF| of one candidate at unique value j."""
    t = -np.expm1(-beta * (log_u[j] - log_xmin)) * inv_norm
    return abs(t - (first[j] - k) * inv_tail)


@njit(cache=True, nogil=True)
def peak(
    log_u: np.ndarray,
    first: np.ndarray,
    j: int,
    k: int,
    inv_tail: float,
    log_xmin: float,
    beta: float,
    inv_norm: float,
) -> int:
    """A point beyond j where the deviation is larger, probed at doubling steps: a witness with a
    margin, so that neighbouring candidates are pruned by it in O(1)."""
    top = log_u.shape[0]
    best_j = j
    best_d = deviation(log_u, first, j, k, inv_tail, log_xmin, beta, inv_norm)
    step = 1
    while j + step < top:
        d = deviation(log_u, first, j + step, k, inv_tail, log_xmin, beta, inv_norm)
        if d > best_d:
            best_d = d
            best_j = j + step
        step *= 2
    return best_j


@njit(cache=True, nogil=True)
def gallop(
    log_u: np.ndarray,
    first: np.ndarray,
    start: int,
    k: int,
    inv_tail: float,
    log_xmin: float,
    beta: float,
    inv_norm: float,
    run: float,
    where: int,
    limit: float,
) -> tuple[float, int]:
    """Running maximum of the deviation from `start` on, skipping blocks that cannot raise it.

    Model and empirical CDFs both rise, so on [a, b] the deviation is at most
    max(t(b) - e(a), e(b) - t(a)): a block whose bound (plus a rounding margin) is within the
    threshold is skipped, and the step doubles; otherwise it halves. The threshold is `limit`
    when finite (find a point above it; stops there), else the running maximum (the exact KS).
    """
    top = log_u.shape[0] - 1
    fixed = limit < np.inf
    a = start
    ta = -np.expm1(-beta * (log_u[a] - log_xmin)) * inv_norm
    ea = (first[a] - k) * inv_tail
    step = 1
    while a < top:
        thr = limit if fixed else run
        # every later point has e' >= e and t' >= t, both <= 1: |t' - e'| <= max(1 - e, 1 - t)
        if 1.0 - ea <= thr and 1.0 - ta <= thr:
            break
        b = min(a + step, top)
        tb = -np.expm1(-beta * (log_u[b] - log_xmin)) * inv_norm
        eb = (first[b] - k) * inv_tail
        d = abs(tb - eb)
        if d > run:
            run = d
            where = b
            if run > limit:
                return run, where
            if not fixed:
                thr = run
        if b == a + 1 or max(tb - ea, eb - ta) + SLACK <= thr:
            a = b
            ta = tb
            ea = eb
            step *= 2
        else:
            step = (b - a) // 2
    return run, where


@njit(cache=True, nogil=True)
def ks_one(
    log_u: np.ndarray,
    first: np.ndarray,
    start: int,
    k: int,
    n: int,
    log_xmin: float,
    beta: float,
    norm: float,
    bound: float,
) -> tuple[float, bool, int]:
    """KS distance of one candidate: unique values from `start`, tail = sorted rows from `k`.

    `beta` = alpha - 1; `norm` = 1 - (xmax/xmin)^-beta (1 without xmax). Returns (distance, exact,
    position of the maximum): not exact means the scan stopped once the maximum exceeded `bound`.
    A few evenly spaced probes seed the running maximum so that the exact sweep skips more; with a
    finite bound a first sweep only looks for a point above it, which skips more still.
    """
    inv = 1.0 / (n - k)
    inv_norm = 1.0 / norm
    top = log_u.shape[0]
    span = top - 1 - start
    run = 0.0
    where = start
    m = min(N_PROBE, span)
    for i in range(m + 1):
        j = start + (span * i) // max(m, 1)
        d = deviation(log_u, first, j, k, inv, log_xmin, beta, inv_norm)
        if d > run:
            run = d
            where = j
    if run > bound:
        return run, False, where
    # one call site for both sweeps: each inlined copy of `gallop` costs compile time
    limit = bound
    while True:
        run, where = gallop(
            log_u, first, start, k, inv, log_xmin, beta, inv_norm, run, where, limit
        )
        if run > limit:
            return run, False, where
        if limit == np.inf:
            return run, True, where
        limit = np.inf


@njit(cache=True, nogil=True)
def attempt(
    log_u: np.ndarray,
    first: np.ndarray,
    n: int,
    c: int,
    betas: np.ndarray,
    norms: np.ndarray,
    bound: float,
    dist: np.ndarray,
    proven: np.ndarray,
    witness: np.ndarray,
    slot: int,
    stride: int,
) -> int:
    """Candidate c against `bound`: witnesses first, then a sweep; a pruning sweep leaves a new
    witness. Fills dist[c] and proven[c]; returns the next witness slot. Used for the few
    neighbours of the best seed (the main loop repeats this inline: a call per candidate there
    costs more than the pruning itself). Candidate c starts at point c * stride."""
    q = c * stride
    k = first[q]
    inv_tail = 1.0 / (n - k)
    inv_norm = 1.0 / norms[c]
    if bound < np.inf:
        m = witness.shape[0]
        for i in range(m):
            # newest first: the last witness to prune (or be found) is the likeliest to prune next
            w = (slot - 1 - i) % m
            j = witness[w]
            if j >= q:
                d = deviation(log_u, first, j, k, inv_tail, log_u[q], betas[c], inv_norm)
                if d > bound:
                    dist[c] = d
                    return slot
    d, ok, where = ks_one(log_u, first, q, k, n, log_u[q], betas[c], norms[c], bound)
    dist[c] = d
    proven[c] = ok
    if ok:
        return slot
    witness[slot] = peak(log_u, first, where, k, inv_tail, log_u[q], betas[c], inv_norm)
    return (slot + 1) % witness.shape[0]


@njit(cache=True, nogil=True)
def _scan_kernel(
    log_u: np.ndarray,
    first: np.ndarray,
    n: int,
    n_cand: int,
    betas: np.ndarray,
    norms: np.ndarray,
    valid: np.ndarray,
    exact: bool,
    seeds: np.ndarray,
    stride: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """`ks_scan` once its seeds are chosen; candidate c starts at point c * stride."""
    dist = np.full(n_cand, np.inf)
    proven = np.zeros(n_cand, dtype=np.bool_)
    best = np.inf
    best_seed = -1
    local = np.full(N_WITNESS, -1, dtype=np.int64)
    at = 0 * local.shape[0]  # not a literal 0, which would compile a second `attempt`
    for c_seed in seeds:
        c = int(c_seed)
        at = attempt(log_u, first, n, c, betas, norms, np.inf, dist, proven, local, at, stride)
        if dist[c] < best:
            best = dist[c]
            best_seed = c
    lo = max(best_seed - N_SEED, 0)
    hi = min(best_seed + N_SEED, n_cand)
    for c in range(lo, hi):
        if valid[c] and not proven[c]:
            bound = np.inf if exact else best
            at = attempt(log_u, first, n, c, betas, norms, bound, dist, proven, local, at, stride)
            if proven[c] and dist[c] < best:
                best = dist[c]
    # main loop: `attempt` written inline; witnesses are tried from the last one that pruned
    witness = np.full(N_WITNESS, -1, dtype=np.int64)
    slot = 0
    hit = 0
    for c in range(n_cand):
        # a lower bound already above an earlier (so larger) best stays pruned
        if proven[c] or dist[c] < np.inf:
            continue
        bound = np.inf if exact else best
        q = c * stride
        k = first[q]
        inv_tail = 1.0 / (n - k)
        inv_norm = 1.0 / norms[c]
        pruned = False
        if not exact:
            for i in range(N_WITNESS):
                w = hit + i
                if w >= N_WITNESS:
                    w -= N_WITNESS
                j = witness[w]
                if j >= q:
                    d = deviation(log_u, first, j, k, inv_tail, log_u[q], betas[c], inv_norm)
                    if d > bound:
                        dist[c] = d
                        pruned = True
                        hit = w
                        break
        if pruned:
            continue
        d, ok, where = ks_one(log_u, first, q, k, n, log_u[q], betas[c], norms[c], bound)
        dist[c] = d
        proven[c] = ok
        if not ok:
            witness[slot] = peak(log_u, first, where, k, inv_tail, log_u[q], betas[c], inv_norm)
            hit = slot
            slot = (slot + 1) % N_WITNESS
        elif valid[c] and d < best:
            best = d
    winner = -1
    for c in range(n_cand):
        if valid[c] and proven[c] and dist[c] == best:
            winner = c
            break
    return dist, proven, winner


def ks_scan(
    log_u: np.ndarray,
    first: np.ndarray,
    n: int,
    n_cand: int,
    betas: np.ndarray,
    norms: np.ndarray,
    valid: np.ndarray,
    exact: bool,
    stride: int = 1,
) -> tuple[np.ndarray, np.ndarray, int]:
    """KS distance of candidates 0..n_cand-1 (candidate c has xmin = unique value c).

    Returns (distances, exact mask, index of the best valid candidate or -1). With `exact`, every
    candidate is computed in full; otherwise non-winning candidates may hold lower bounds. The
    points are (log_u, first) as they come; with `stride` 2 they are `two_sided` points, and the
    distance is the two-sided supremum. The bound is seeded here, in numpy, with candidates whose
    tails shrink geometrically (good tails are often short), then the kernel tries the
    neighbours of the best seed (numpy's unique and nonzero cost seconds to compile in numba).
    """
    valid_idx = np.flatnonzero(valid)
    if valid_idx.size == 0:
        return np.full(n_cand, np.inf), np.zeros(n_cand, dtype=np.bool_), -1
    m = valid_idx.shape[0]
    ratio = (1.0 / m) ** (1.0 / N_SEED)
    picks = [m - max(int(m * ratio**s), 1) for s in range(N_SEED + 1)]
    seeds = np.unique(valid_idx[picks]).astype(np.int64)
    return _scan_kernel(log_u, first, n, n_cand, betas, norms, valid, exact, seeds, stride)


def two_sided(log_u: np.ndarray, first: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points for the two-sided KS supremum: each unique value twice, first with the empirical
    CDF just below it (powerlaw's convention) and then with the CDF at it (the top of its jump).

    Between unique values the model CDF rises while the empirical one is flat, so these 2U points
    hold the supremum; unique value j sits at point 2j, and `ks_one` / `ks_scan` (stride 2) work
    on them unchanged. Without ties the two conventions differ by at most 1 / n_tail.
    """
    points = np.repeat(log_u, 2)
    counts = np.empty(2 * first.shape[0], dtype=np.int64)
    counts[0::2] = first
    counts[1:-1:2] = first[1:]
    counts[-1] = n
    return points, counts
