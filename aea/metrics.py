"""CMC and mAP by the Market-1501 protocol (also DukeMTMC-reID and CUHK03 new protocol).

For every query the gallery is split into
  * junk: gallery pid -1, and images of the query's identity taken by the query's camera;
    junk is removed from the ranking as if it did not exist;
  * good: images of the query's identity from another camera;
  * everything else (other identities, pid 0 distractors) is an ordinary negative.
A query without any good image is counted (``num_query``) but excluded from CMC and mAP.

Ranks follow a *stable* sort of the distances: equal distances keep gallery order,
as MATLAB's ``sort`` does in the official evaluation.  Distances may be +-inf (say, to
rule pairs out); NaN is an error.  Two average precisions:
  * ``official``: the Market-1501 release's ``compute_AP.m`` (its loop adds
    (recall - old_recall) * (old_precision + precision) / 2 at every non-junk position,
    old_precision starting at 1), a trapezoid rule over the precision-recall curve:
    AP = sum over good i (1-based, in rank order) of
    (1/ngood) * (p_prev + p_i) / 2 with p_i = i / (r_i + 1) and p_prev = (i - 1) / r_i,
    or 1.0 when r_i = 0, where r_i is the 0-based rank of the i-th good image among the
    non-junk gallery;
  * ``noninterp``: the mean of p_i, as torchreid and fast-reid compute it (and
    scikit-learn's ``average_precision_score`` where no scores tie).

Two implementations give identical numbers:
  * :func:`evaluate_ranking_loop` stable-sorts every row and walks the queries: the
    reference, simple and slow.
  * :func:`evaluate_ranking` / :func:`evaluate_features` never sort a gallery.  Only the
    ranks of the good images matter, and the rank of a good image is the number of
    non-junk gallery images ordered before it.  Per chunk of queries:
      1. the window: gallery cells no farther than the query's farthest good image (one
         comparison pass; all other cells rank after every good image);
      2. the window's distances go to integer bins by a monotone map (multiply by a power
         of two, subtract, clamp, truncate) spanning the query's good distances, and one
         histogram per query counts them: every cell in an earlier bin ranks before;
      3. cells sharing a bin with a good image are few and ordered exactly by
         (distance, gallery index).
    Memory is bounded by chunking the queries, so a 500k gallery works; chunks run
    concurrently, one thread each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from aea.errors import AEAError

__all__ = [
    "DEFAULT_MEMORY_BUDGET_BYTES",
    "RankingResult",
    "evaluate_features",
    "evaluate_ranking",
    "evaluate_ranking_loop",
    "pairwise_euclidean",
]

log = logging.getLogger(__name__)

ArrayLike = np.ndarray | torch.Tensor | list | tuple

DEFAULT_MEMORY_BUDGET_BYTES = 512 * 2**20
"""Temporary memory the chunks being processed at one time may use in the fast paths."""


@dataclass(frozen=True)
class RankingResult:
    """CMC curve and both mAP variants; all values are fractions in [0, 1].

    ``ap_official`` / ``ap_noninterp`` hold one AP per valid query, in query order;
    ``first_rank`` the 0-based rank of each valid query's first correct match;
    ``valid_query`` holds the indices of those queries.
    """

    cmc: np.ndarray
    map_official: float
    map_noninterp: float
    ap_official: np.ndarray
    ap_noninterp: np.ndarray
    first_rank: np.ndarray
    valid_query: np.ndarray
    num_query: int
    num_valid_query: int

    @property
    def max_rank(self) -> int:
        return len(self.cmc)

    def rank(self, k: int) -> float:
        """CMC at rank ``k`` (1-based): fraction of valid queries matched within the top k."""
        if not 1 <= k <= self.max_rank:
            raise AEAError(f"rank-{k} is outside the evaluated CMC (1..{self.max_rank}); raise max_rank")
        return float(self.cmc[k - 1])

    @property
    def rank1(self) -> float:
        return self.rank(1)

    @property
    def rank5(self) -> float:
        return self.rank(5)

    @property
    def rank10(self) -> float:
        return self.rank(10)

    @property
    def rank20(self) -> float:
        return self.rank(20)

    def as_dict(self) -> dict:
        """The metric keys of a run's ``metrics.json`` (plain Python numbers)."""
        out = {f"rank{k}": self.rank(k) for k in (1, 5, 10, 20) if k <= self.max_rank}
        out.update(
            map_official=float(self.map_official),
            map_noninterp=float(self.map_noninterp),
            cmc=[float(v) for v in self.cmc],
            num_query=int(self.num_query),
            num_valid_query=int(self.num_valid_query),
        )
        return out

    def per_query(self) -> dict[str, list]:
        """Per valid query (query index, both APs, 1-based rank of the first correct match): what lets two runs
        on the same test set be compared query by query."""
        return {
            "query": [int(q) for q in self.valid_query],
            "ap_official": [float(v) for v in self.ap_official],
            "ap_noninterp": [float(v) for v in self.ap_noninterp],
            "first_match_rank": [int(r) + 1 for r in self.first_rank],
        }


# --------------------------------------------------------------------------- inputs


def _labels(values: ArrayLike, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise AEAError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or not np.all(arr == np.round(arr)):
            raise AEAError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _check_labels(
    q_pids: ArrayLike, g_pids: ArrayLike, q_camids: ArrayLike, g_camids: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    qp, gp = _labels(q_pids, "q_pids"), _labels(g_pids, "g_pids")
    qc, gc = _labels(q_camids, "q_camids"), _labels(g_camids, "g_camids")
    if len(qp) != len(qc):
        raise AEAError(f"q_pids has {len(qp)} entries but q_camids has {len(qc)}; pass one per query")
    if len(gp) != len(gc):
        raise AEAError(f"g_pids has {len(gp)} entries but g_camids has {len(gc)}; pass one per gallery image")
    if len(qp) == 0 or len(gp) == 0:
        raise AEAError("query and gallery must both be non-empty")
    return qp, gp, qc, gc


def _check_max_rank(max_rank: int) -> int:
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise AEAError(f"max_rank must be a positive integer, got {max_rank!r}")
    return int(max_rank)


def _as_distance_tensor(distmat: ArrayLike, shape: tuple[int, int]) -> torch.Tensor:
    """A float32/float64 view (no copy where possible) of the distance matrix."""
    if isinstance(distmat, torch.Tensor):
        dist = distmat.detach()
    else:
        array = np.asarray(distmat)
        if any(stride < 0 for stride in array.strides):  # torch cannot view those
            array = np.ascontiguousarray(array)
        dist = torch.as_tensor(array)
    if dist.dim() != 2 or tuple(dist.shape) != shape:
        raise AEAError(
            f"distance matrix has shape {tuple(dist.shape)} but the labels say {shape} (queries x gallery)"
        )
    if dist.dtype not in (torch.float32, torch.float64):
        # integers and half precision are represented exactly in float64 / float32
        dist = dist.to(torch.float32 if dist.dtype in (torch.float16, torch.bfloat16) else torch.float64)
    return dist


def _nan_error() -> AEAError:
    return AEAError("distance matrix contains NaN; check the features (NaN loss? empty images?)")


# ----------------------------------------------------------------------- AP and CMC


def _ap_official(ranks: np.ndarray) -> float:
    """Market-1501 ``compute_AP.m``: trapezoids between consecutive precision values."""
    i = np.arange(1, len(ranks) + 1, dtype=np.float64)
    r = ranks.astype(np.float64)
    precision = i / (r + 1.0)
    previous = np.where(r == 0, 1.0, (i - 1.0) / np.maximum(r, 1.0))
    return float(np.sum((previous + precision) / 2.0) / len(ranks))


def _ap_noninterp(ranks: np.ndarray) -> float:
    i = np.arange(1, len(ranks) + 1, dtype=np.float64)
    return float(np.mean(i / (ranks.astype(np.float64) + 1.0)))


def _batch_aps(ranks: torch.Tensor, valid: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Both APs for padded rows of good ranks (ascending; ``valid`` marks real entries)."""
    r = ranks.to(torch.float64)
    i = torch.arange(1, ranks.shape[1] + 1, dtype=torch.float64, device=ranks.device)
    ngood = valid.sum(1).to(torch.float64)
    precision = i / (r + 1.0)
    previous = torch.where(r == 0, torch.ones_like(r), (i - 1.0) / r.clamp(min=1.0))
    zero = torch.zeros_like(r)
    official = torch.where(valid, (previous + precision) / 2.0, zero).sum(1) / ngood
    noninterp = torch.where(valid, precision, zero).sum(1) / ngood
    return official.cpu().numpy(), noninterp.cpu().numpy()


def _result(
    first_ranks: np.ndarray,
    ap_official: np.ndarray,
    ap_noninterp: np.ndarray,
    valid_query: np.ndarray,
    num_query: int,
    max_rank: int,
) -> RankingResult:
    num_valid = len(valid_query)
    if num_valid == 0:
        raise AEAError(
            "no query has a true match (same pid, other camera) in the gallery; check the query/gallery split"
        )
    hits = np.bincount(first_ranks[first_ranks < max_rank], minlength=max_rank)
    cmc = np.cumsum(hits).astype(np.float64) / num_valid
    return RankingResult(
        cmc=cmc,
        map_official=float(np.mean(ap_official)),
        map_noninterp=float(np.mean(ap_noninterp)),
        ap_official=ap_official,
        ap_noninterp=ap_noninterp,
        first_rank=np.asarray(first_ranks, dtype=np.int64),
        valid_query=valid_query,
        num_query=num_query,
        num_valid_query=num_valid,
    )


# ---------------------------------------------------------------------- reference


def evaluate_ranking_loop(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    *,
    max_rank: int = 50,
) -> RankingResult:
    """Reference evaluation: stable-sort every row, drop junk, walk the queries one by one.

    Slow and memory hungry (the whole Q x G ordering), kept simple as the yardstick for
    :func:`evaluate_ranking`.
    """
    qp, gp, qc, gc = _check_labels(q_pids, g_pids, q_camids, g_camids)
    max_rank = _check_max_rank(max_rank)
    dist = _as_distance_tensor(distmat, (len(qp), len(gp))).cpu().numpy()
    if np.isnan(dist).any():
        raise _nan_error()
    order = np.argsort(dist, axis=1, kind="stable")
    first, ap_off, ap_non, valid = [], [], [], []
    for q in range(len(qp)):
        ranked = order[q]
        same_pid = gp[ranked] == qp[q]
        same_cam = gc[ranked] == qc[q]
        junk = (gp[ranked] == -1) | (same_pid & same_cam)
        good = (same_pid & ~same_cam)[~junk]
        ranks = np.flatnonzero(good)
        if len(ranks) == 0:
            continue
        valid.append(q)
        first.append(ranks[0])
        ap_off.append(_ap_official(ranks))
        ap_non.append(_ap_noninterp(ranks))
    return _result(
        np.asarray(first, dtype=np.int64),
        np.asarray(ap_off, dtype=np.float64),
        np.asarray(ap_non, dtype=np.float64),
        np.asarray(valid, dtype=np.int64),
        len(qp),
        max_rank,
    )


# ------------------------------------------------------------------------ fast path

_NUM_BINS = 512  # bins spanning a query's good distances; more bins, fewer exact fix-ups
_OVERFLOW = _NUM_BINS + 4  # the bin of everything beyond the good distances' bins
_PADDING = _NUM_BINS + 5  # the "bin" of the padding slots of good images: no cell is there
_TABLE = _NUM_BINS + 6  # histogram width
_MAX_CHUNK = 256  # queries per chunk; larger chunks stop getting faster
_BYTES_PER_CELL = 96  # temporaries per (query, gallery) cell, worst case: every cell in the window
_BYTES_PER_QUERY = _TABLE * 32  # per-query tables


class _Gallery:
    """Gallery labels arranged for per-query lookups of the query's identity."""

    def __init__(self, g_pids: np.ndarray, g_camids: np.ndarray, device: torch.device) -> None:
        self.size = len(g_pids)
        self.pids = torch.as_tensor(g_pids, device=device)
        self.cams = torch.as_tensor(g_camids, device=device)
        is_junk = g_pids == -1
        self.not_junk = torch.as_tensor(~is_junk, device=device)[None, :] if is_junk.any() else None
        self._pid_values, pid_code, self._pid_count = np.unique(g_pids, return_inverse=True, return_counts=True)
        self._pid_start = np.cumsum(self._pid_count) - self._pid_count
        self._cam_values, cam_code = np.unique(g_camids, return_inverse=True)
        self._pid_cam = np.sort(pid_code * len(self._cam_values) + cam_code)
        # stable: one identity's images stay in gallery order
        self.by_pid = torch.as_tensor(np.argsort(pid_code, kind="stable"), device=device)

    def identity_slices(self, q_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start (into ``by_pid``) and count of each query's identity in the gallery."""
        code, found = _lookup(self._pid_values, q_pids)
        found &= q_pids != -1  # junk is nobody's identity
        if not found.any():
            return np.zeros_like(code), np.zeros_like(code)
        return np.where(found, self._pid_start[code], 0), np.where(found, self._pid_count[code], 0)

    def num_good(self, q_pids: np.ndarray, q_camids: np.ndarray) -> np.ndarray:
        """Number of good images (same pid, other camera) of every query."""
        _, same_pid = self.identity_slices(q_pids)
        pid_code, _ = _lookup(self._pid_values, q_pids)
        cam_code, cam_found = _lookup(self._cam_values, q_camids)
        key = pid_code * len(self._cam_values) + cam_code
        same_cam = np.searchsorted(self._pid_cam, key, "right") - np.searchsorted(self._pid_cam, key, "left")
        return same_pid - np.where(cam_found & (same_pid > 0), same_cam, 0)


def _lookup(values: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each query in the sorted unique ``values`` and whether it is there."""
    if len(values) == 0:
        return np.zeros(len(queries), np.int64), np.zeros(len(queries), bool)
    index = np.searchsorted(values, queries).clip(max=len(values) - 1)
    return index, values[index] == queries


def _window(
    dist: torch.Tensor,
    hi: torch.Tensor,
    not_junk: torch.Tensor | None,
    junk_rows: torch.Tensor,
    junk_cols: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row, column and distance of the non-junk cells not farther than ``hi`` of their row.

    Row-major order.  NaN cells are included (``not d > hi``) so that they are noticed.
    """
    # on the CPU, numpy's comparison and nonzero are several times faster than torch's
    window = _window_numpy if dist.device.type == "cpu" else _window_torch
    return window(dist, hi, not_junk, junk_rows, junk_cols)


def _window_numpy(
    dist: torch.Tensor,
    hi: torch.Tensor,
    not_junk: torch.Tensor | None,
    junk_rows: torch.Tensor,
    junk_cols: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    values = dist.numpy()
    window = np.greater(values, hi.numpy())
    if not_junk is None:
        np.logical_not(window, out=window)
    else:
        np.less(window, not_junk.numpy(), out=window)  # for bools, a < b is (not a) and b
    window[junk_rows.numpy(), junk_cols.numpy()] = False
    cells = np.flatnonzero(window)
    del window
    row, col = np.divmod(cells, dist.shape[1])
    cell_dist = values.reshape(-1)[cells] if values.flags.c_contiguous else values[row, col]
    return torch.from_numpy(row), torch.from_numpy(col), torch.from_numpy(cell_dist)


def _window_torch(
    dist: torch.Tensor,
    hi: torch.Tensor,
    not_junk: torch.Tensor | None,
    junk_rows: torch.Tensor,
    junk_cols: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    window = (dist > hi).logical_not_()
    if not_junk is not None:
        window.logical_and_(not_junk)
    window[junk_rows, junk_cols] = False
    row, col = window.nonzero(as_tuple=True)
    return row, col, dist[row, col]


def _good_ranks(
    dist: torch.Tensor,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    gallery: _Gallery,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact 0-based ranks among the non-junk gallery of every good image of each query.

    ``dist`` (C, G) holds queries that all have a good image.  Returns ``ranks`` (C, P),
    ascending per row, and ``valid`` (C, P) marking the real entries of the padded rows.
    """
    device = dist.device
    num_rows, num_gallery = dist.shape
    q_pid_t = torch.as_tensor(q_pids, device=device)
    q_cam_t = torch.as_tensor(q_camids, device=device)

    # -- the query's own identity (a few images): good ones and same-camera junk
    start, count = gallery.identity_slices(q_pids)
    offsets = torch.arange(int(count.max()), device=device)
    in_identity = offsets < torch.as_tensor(count, device=device)[:, None]
    slots = (torch.as_tensor(start, device=device)[:, None] + offsets).clamp(max=num_gallery - 1)
    columns = gallery.by_pid[slots]  # ascending gallery index within each row
    other_cam = gallery.cams[columns] != q_cam_t[:, None]
    is_good = in_identity & other_cam
    num_good = is_good.sum(1)
    num_slots = int(num_good.max())
    inf = torch.tensor(float("inf"), dtype=dist.dtype, device=device)
    good_dist = torch.where(is_good, dist.gather(1, columns), inf)
    good_dist = torch.sort(good_dist, dim=1, stable=True).values[:, :num_slots]
    valid = torch.arange(num_slots, device=device) < num_good[:, None]

    # -- the window: every non-junk cell no farther than the farthest good image; all
    # other cells rank after every good image
    hi = good_dist.gather(1, (num_good - 1)[:, None])
    junk_rows, junk_slots = (in_identity & ~other_cam).nonzero(as_tuple=True)
    row, col, cell_dist = _window(dist, hi, gallery.not_junk, junk_rows, columns[junk_rows, junk_slots])
    if bool(torch.isnan(cell_dist).any()):
        raise _nan_error()

    # -- bins: a monotone map of the distance (each step is monotone), so a smaller bin
    # means a smaller distance; the finite good distances of a row span its bins
    # 2 .. _NUM_BINS + 3 (infinite ones end up in bin 0 or _OVERFLOW, sorted out exactly)
    finite = valid & torch.isfinite(good_dist)
    lo = torch.where(finite, good_dist, torch.inf).amin(1).to(torch.float64)
    hi = torch.where(finite, good_dist, -torch.inf).amax(1).to(torch.float64)
    lo, hi = torch.where(finite.any(1), lo, 0.0), torch.where(finite.any(1), hi, 0.0)
    span = torch.maximum(hi - lo, torch.maximum(hi.abs(), lo.abs()) * 2.0**-20).clamp(min=1e-300)
    scale = torch.exp2(torch.floor(torch.log2(_NUM_BINS / span)).clamp(-120, 120))  # d * 2^e is exact
    shift = (torch.floor(lo * scale) - 2.0).to(dist.dtype)
    scale = scale.to(dist.dtype)

    def to_bins(values: torch.Tensor, row_scale: torch.Tensor, row_shift: torch.Tensor) -> torch.Tensor:
        return (values * row_scale).sub_(row_shift).clamp_(0, _OVERFLOW).long()

    key = to_bins(cell_dist, scale[row], shift[row]).add_(row * _TABLE)  # (row, bin) of each cell
    good_bins = to_bins(good_dist, scale[:, None], shift[:, None]).masked_fill_(~valid, _PADDING)
    hist = torch.bincount(key, minlength=num_rows * _TABLE).view(num_rows, _TABLE)
    before_bin = hist.cumsum(1) - hist  # window cells in earlier bins: all ranked before
    ranks = before_bin.gather(1, good_bins)

    # -- cells sharing a bin with a good image, ordered exactly by (distance, gallery index)
    marked = torch.zeros(num_rows, _TABLE, dtype=torch.bool, device=device)
    marked.scatter_(1, good_bins, True)
    marked[:, _PADDING] = False
    cand = torch.nonzero(marked.view(-1)[key])[:, 0]
    # lexicographic (row, distance, column): stable sorts, least significant key first;
    # the cells are in (row, column) order already
    perm = cand[torch.sort(cell_dist[cand], stable=True).indices]
    perm = perm[torch.sort(row[perm], stable=True).indices]
    c_row, c_col, c_key = row[perm], col[perm], key[perm]  # c_key is non-decreasing now
    position = torch.arange(len(c_key), device=device) - torch.searchsorted(c_key, c_key, right=False)
    good = (gallery.pids[c_col] == q_pid_t[c_row]) & (gallery.cams[c_col] != q_cam_t[c_row])
    within = torch.zeros_like(ranks)
    # good images come row by row in (distance, index) order: the order of the padded slots
    within[valid] = position[good]
    ranks = torch.where(valid, ranks + within, torch.zeros_like(ranks))
    return ranks, valid


@contextmanager
def _one_thread_per_op() -> Iterator[int]:
    """Make torch ops single-threaded for a while; yields the previous thread count.

    The fast paths run many short ops: with several threads per op, every op waits for
    all of them, which collapses when other processes compete for the cores.  Instead,
    chunks are processed concurrently, one thread each.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield previous
    finally:
        torch.set_num_threads(previous)


def _evaluate_chunks(
    distances: Callable[[np.ndarray], torch.Tensor],
    valid_query: np.ndarray,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    gallery: _Gallery,
    *,
    num_query: int,
    max_rank: int,
    bytes_per_query: int,
    memory_budget_bytes: int,
    device: torch.device,
    progress: bool,
) -> RankingResult:
    """Metrics of the valid queries, chunk by chunk; ``distances(query_indices)`` gives a chunk."""

    def evaluate(query_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dist = distances(query_index)
        ranks, valid = _good_ranks(dist, q_pids[query_index], q_camids[query_index], gallery)
        official, noninterp = _batch_aps(ranks, valid)
        return ranks[:, 0].cpu().numpy(), official, noninterp

    with _one_thread_per_op() as threads:
        workers = threads if device.type == "cpu" else 1
        chunk = max(1, min(_MAX_CHUNK, memory_budget_bytes // (workers * bytes_per_query)))
        parts = [valid_query[i : i + chunk] for i in range(0, len(valid_query), chunk)]
        log.debug("%d of %d queries valid, %d per chunk, %d workers", len(valid_query), num_query, chunk, workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(tqdm(pool.map(evaluate, parts), total=len(parts), desc="ranking", disable=not progress))
    if not results:
        return _result(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), valid_query, num_query, max_rank)
    first, ap_off, ap_non = (np.concatenate(columns) for columns in zip(*results))
    return _result(first, ap_off, ap_non, valid_query, num_query, max_rank)


def _select_rows(matrix: torch.Tensor, query_index: np.ndarray) -> torch.Tensor:
    """Rows of ``matrix``; a view when they are consecutive (the usual case)."""
    first, last = int(query_index[0]), int(query_index[-1])
    if last - first + 1 == len(query_index):
        return matrix[first : last + 1]
    return matrix[torch.as_tensor(query_index, device=matrix.device)]


def _check_budget(memory_budget_bytes: int) -> None:
    is_int = isinstance(memory_budget_bytes, (int, np.integer)) and not isinstance(memory_budget_bytes, bool)
    if not is_int or memory_budget_bytes <= 0:
        raise AEAError(f"memory_budget_bytes must be a positive number of bytes, got {memory_budget_bytes!r}")


def evaluate_ranking(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    *,
    max_rank: int = 50,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    progress: bool = False,
) -> RankingResult:
    """CMC and mAP of a (queries x gallery) distance matrix, numpy array or torch tensor.

    The same numbers as :func:`evaluate_ranking_loop` without sorting any row.  Queries
    are processed in chunks whose temporaries stay within ``memory_budget_bytes`` (at
    least one query per chunk); a float32 / float64 matrix is not copied.  Runs on its
    device.
    """
    qp, gp, qc, gc = _check_labels(q_pids, g_pids, q_camids, g_camids)
    max_rank = _check_max_rank(max_rank)
    _check_budget(memory_budget_bytes)
    dist = _as_distance_tensor(distmat, (len(qp), len(gp)))
    gallery = _Gallery(gp, gc, dist.device)
    return _evaluate_chunks(
        lambda query_index: _select_rows(dist, query_index),
        np.flatnonzero(gallery.num_good(qp, qc) > 0),
        qp,
        qc,
        gallery,
        num_query=len(qp),
        max_rank=max_rank,
        bytes_per_query=len(gp) * _BYTES_PER_CELL + _BYTES_PER_QUERY,
        memory_budget_bytes=memory_budget_bytes,
        device=dist.device,
        progress=progress,
    )


def pairwise_euclidean(q_feats: torch.Tensor, g_feats: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (Q, G) as sqrt(||q||^2 + ||g||^2 - 2 q.g), in the features' dtype."""
    return _euclidean(q_feats, g_feats, _squared_norms(g_feats))


def _squared_norms(feats: torch.Tensor) -> torch.Tensor:
    # by blocks of rows: no temporary as large as the features
    return torch.cat([block.pow(2).sum(1) for block in feats.split(4096)])


def _euclidean(q_feats: torch.Tensor, g_feats: torch.Tensor, g_sq: torch.Tensor) -> torch.Tensor:
    dist = torch.addmm(_squared_norms(q_feats)[:, None] + g_sq, q_feats, g_feats.t(), alpha=-2.0)
    return dist.clamp_(min=0).sqrt_()


def _as_features(feats: ArrayLike, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(feats).detach()
    if tensor.dim() != 2:
        raise AEAError(f"{name} must be a (N, D) matrix, got shape {tuple(tensor.shape)}")
    if tensor.dtype in (torch.float16, torch.bfloat16):
        return tensor.float()
    return tensor if tensor.is_floating_point() else tensor.double()


def evaluate_features(
    q_feats: ArrayLike,
    g_feats: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    *,
    max_rank: int = 50,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    progress: bool = False,
) -> RankingResult:
    """CMC and mAP of query/gallery features under Euclidean distance.

    Distances are computed per chunk of queries with :func:`pairwise_euclidean`, so the
    full Q x G matrix never exists: memory is the features plus ``memory_budget_bytes``.
    Features are used as given (normalise them beforehand where the method says so).
    Runs on the device of ``q_feats``.
    """
    qp, gp, qc, gc = _check_labels(q_pids, g_pids, q_camids, g_camids)
    max_rank = _check_max_rank(max_rank)
    _check_budget(memory_budget_bytes)
    qf = _as_features(q_feats, "q_feats")
    gf = _as_features(g_feats, "g_feats").to(device=qf.device)
    dtype = torch.promote_types(qf.dtype, gf.dtype)
    qf, gf = qf.to(dtype), gf.to(dtype)
    if qf.shape[1] != gf.shape[1]:
        raise AEAError(f"query features have {qf.shape[1]} dimensions but gallery features {gf.shape[1]}")
    if qf.shape[0] != len(qp) or gf.shape[0] != len(gp):
        raise AEAError(
            f"{qf.shape[0]} query / {gf.shape[0]} gallery features but {len(qp)} / {len(gp)} labels;"
            " pass one label per image"
        )
    gallery = _Gallery(gp, gc, qf.device)
    g_sq = _squared_norms(gf)
    return _evaluate_chunks(
        lambda query_index: _euclidean(_select_rows(qf, query_index), gf, g_sq),
        np.flatnonzero(gallery.num_good(qp, qc) > 0),
        qp,
        qc,
        gallery,
        num_query=len(qp),
        max_rank=max_rank,
        bytes_per_query=len(gp) * (_BYTES_PER_CELL + qf.element_size()) + _BYTES_PER_QUERY,
        memory_budget_bytes=memory_budget_bytes,
        device=qf.device,
        progress=progress,
    )
