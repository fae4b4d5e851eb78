"""CMC / mAP by the Market-1501 protocol: golden case, hand-computed cases, fast path == loop path."""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from aea import metrics
from aea.errors import AEAError
from aea.metrics import (
    evaluate_features,
    evaluate_ranking,
    evaluate_ranking_loop,
    pairwise_euclidean,
)

GOLDEN = Path(__file__).resolve().parent / "golden" / "market-eval-check"  # source: its SOURCE.md
BOTH = [evaluate_ranking, evaluate_ranking_loop]


def assert_same(a: metrics.RankingResult, b: metrics.RankingResult, atol: float = 1e-9) -> None:
    assert (a.num_query, a.num_valid_query) == (b.num_query, b.num_valid_query)
    np.testing.assert_array_equal(a.valid_query, b.valid_query)
    np.testing.assert_allclose(a.cmc, b.cmc, rtol=0, atol=atol)
    np.testing.assert_allclose(a.ap_official, b.ap_official, rtol=0, atol=atol)
    np.testing.assert_allclose(a.ap_noninterp, b.ap_noninterp, rtol=0, atol=atol)
    assert a.map_official == pytest.approx(b.map_official, abs=atol)
    assert a.map_noninterp == pytest.approx(b.map_noninterp, abs=atol)


# ------------------------------------------------------------------------- golden


def test_golden_files_are_the_published_ones() -> None:
    """Every file of the copy has the SHA-256 that SOURCE.md records for the case as received."""
    sums = dict(re.findall(r"^\| `([\w.]+)` \| `([0-9a-f]{64})` \|$", (GOLDEN / "SOURCE.md").read_text(), re.M))
    assert len(sums) == 7
    for name, expected in sums.items():
        path = GOLDEN / name
        data = path.read_bytes() if path.exists() else gzip.decompress((GOLDEN / f"{name}.gz").read_bytes())
        assert hashlib.sha256(data).hexdigest() == expected, name


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    load = lambda name, dtype: np.loadtxt(GOLDEN / name, dtype=dtype)  # noqa: E731
    return {
        "dist": load("query_gallery_distance.txt.gz", np.float64),
        "q_pids": load("query_id.txt", np.int64),
        "g_pids": load("gallery_id.txt", np.int64),
        "q_cams": load("query_cam.txt", np.int64),
        "g_cams": load("gallery_cam.txt", np.int64),
        "cmc": load("CMC.txt", np.float64),
        "map": np.loadtxt(GOLDEN / "mAP.txt", dtype=np.float64).reshape(-1),
    }


@pytest.mark.parametrize(
    "evaluate, as_input",
    [
        (evaluate_ranking, np.asarray),
        (evaluate_ranking, lambda d: d.astype(np.float32)),  # same order and ties as float64
        (evaluate_ranking, torch.from_numpy),
        (evaluate_ranking_loop, np.asarray),
    ],
    ids=["fast-float64", "fast-float32", "fast-torch", "loop"],
)
def test_golden_market_evaluation(golden, evaluate, as_input) -> None:
    g = golden
    result = evaluate(as_input(g["dist"]), g["q_pids"], g["g_pids"], g["q_cams"], g["g_cams"], max_rank=100)
    assert result.num_query == result.num_valid_query == 100
    # 100 queries: every CMC value is a multiple of 0.01, printed exactly with 2 decimals
    np.testing.assert_allclose(result.cmc, g["cmc"], rtol=0, atol=1e-12)
    assert (result.rank1, result.rank5) == (pytest.approx(0.68, abs=1e-12), pytest.approx(0.85, abs=1e-12))
    assert round(result.map_official, 5) == g["map"][0] == 0.64034
    assert round(result.map_noninterp, 4) == 0.6652


def test_per_query_record_reproduces_the_golden_cmc_and_maps(golden) -> None:
    """The per-query record a run stores is enough to rebuild its CMC and both mAPs (fast path == loop)."""
    g = golden
    args = (g["dist"], g["q_pids"], g["g_pids"], g["q_cams"], g["g_cams"])
    fast = evaluate_ranking(*args, max_rank=100).per_query()
    loop = evaluate_ranking_loop(*args, max_rank=100).per_query()
    assert fast == loop
    first = np.asarray(fast["first_match_rank"])
    assert fast["query"] == list(range(100)) and first.min() >= 1
    np.testing.assert_allclose([np.mean(first <= k) for k in range(1, 101)], g["cmc"], rtol=0, atol=1e-12)
    assert round(float(np.mean(fast["ap_official"])), 5) == 0.64034
    assert round(float(np.mean(fast["ap_noninterp"])), 4) == 0.6652


def test_golden_ties_follow_gallery_order(golden) -> None:
    """The golden distances are rounded: thousands of ties, resolved by gallery order."""
    g = golden
    assert sum(len(row) - len(np.unique(row)) for row in g["dist"]) > 10_000
    labels = g["q_pids"], g["g_pids"][::-1], g["q_cams"], g["g_cams"][::-1]
    flipped = evaluate_ranking(g["dist"][:, ::-1], *labels)
    assert_same(flipped, evaluate_ranking_loop(g["dist"][:, ::-1], *labels))
    # reversing the gallery reverses the tie order, which moves the exact mAP
    reference = evaluate_ranking(g["dist"], g["q_pids"], g["g_pids"], g["q_cams"], g["g_cams"])
    assert abs(flipped.map_official - reference.map_official) > 1e-7


# ------------------------------------------------------------------ hand computed

# One query (pid 1, camera 0); distances increase along the gallery.
CASE_A = dict(g_pids=[1, 2, 1, 3, 1], g_cams=[1, 1, 2, 0, 1])  # good at ranks 0, 2, 4
# good ranks 0, 2, 4 (ngood = 3):
#   non-interpolated: (1/1 + 2/3 + 3/5) / 3                             = 34/45
#   official: i=1, r=0: (1 + 1/1)/2 = 1;  i=2, r=2: (1/2 + 2/3)/2 = 7/12;
#             i=3, r=4: (2/4 + 3/5)/2 = 11/20;  (1 + 7/12 + 11/20) / 3  = 32/45
CASE_B = dict(g_pids=[2, 1, 3, 1], g_cams=[0, 1, 0, 2])  # good at ranks 1, 3
# good ranks 1, 3 (ngood = 2):
#   non-interpolated: (1/2 + 2/4) / 2                                   = 1/2
#   official: i=1, r=1: (0/1 + 1/2)/2 = 1/4;  i=2, r=3: (1/3 + 2/4)/2 = 5/12;
#             (1/4 + 5/12) / 2                                          = 1/3


def one_query(g_pids, g_cams, q_pid=1, q_cam=0, dist=None):
    dist = np.arange(1, len(g_pids) + 1, dtype=np.float64)[None, :] if dist is None else np.asarray(dist)[None, :]
    return dist, [q_pid], g_pids, [q_cam], g_cams


@pytest.mark.parametrize("evaluate", BOTH)
def test_hand_computed_average_precisions(evaluate) -> None:
    a = evaluate(*one_query(**CASE_A), max_rank=5)
    assert a.ap_official[0] == pytest.approx(32 / 45, abs=1e-15)
    assert a.ap_noninterp[0] == pytest.approx(34 / 45, abs=1e-15)
    np.testing.assert_array_equal(a.cmc, [1, 1, 1, 1, 1])
    b = evaluate(*one_query(**CASE_B), max_rank=4)
    assert b.ap_official[0] == pytest.approx(1 / 3, abs=1e-15)
    assert b.ap_noninterp[0] == pytest.approx(1 / 2, abs=1e-15)
    np.testing.assert_array_equal(b.cmc, [0, 1, 1, 1])


@pytest.mark.parametrize("evaluate", BOTH)
def test_two_queries_average(evaluate) -> None:
    # query 0 = case A, query 1 = case B on a joint gallery: A's images, then B's, farther away
    g_pids = CASE_A["g_pids"] + [p + 10 for p in CASE_B["g_pids"]]
    g_cams = CASE_A["g_cams"] + CASE_B["g_cams"]
    dist = np.vstack([np.r_[1:6, 11:15], np.r_[11:16, 1:5]]).astype(np.float64)
    result = evaluate(dist, [1, 11], g_pids, [0, 0], g_cams, max_rank=3)
    # official (32/45 + 1/3) / 2 = 47/90; non-interpolated (34/45 + 1/2) / 2 = 113/180
    assert result.map_official == pytest.approx(float(Fraction(47, 90)), abs=1e-15)
    assert result.map_noninterp == pytest.approx(float(Fraction(113, 180)), abs=1e-15)
    np.testing.assert_array_equal(result.cmc, [0.5, 1.0, 1.0])
    assert (result.rank(1), result.rank(2)) == (0.5, 1.0)


@pytest.mark.parametrize("evaluate", BOTH)
def test_junk_and_distractors(evaluate) -> None:
    # gallery:   pid -1 (junk) | good | same pid, same camera (junk) | pid 0 distractor | good
    g_pids, g_cams = [-1, 1, 1, 0, 1], [1, 1, 0, 2, 2]
    result = evaluate(*one_query(g_pids, g_cams), max_rank=3)
    # junk removed, the distractor is a negative: good ranks 0, 2
    #   non-interpolated: (1 + 2/3) / 2 = 5/6; official: (1 + (1/2 + 2/3)/2) / 2 = 19/24
    assert result.ap_noninterp[0] == pytest.approx(5 / 6, abs=1e-15)
    assert result.ap_official[0] == pytest.approx(19 / 24, abs=1e-15)
    np.testing.assert_array_equal(result.cmc, [1, 1, 1])


@pytest.mark.parametrize("evaluate", BOTH)
def test_same_camera_images_are_removed_not_matched(evaluate) -> None:
    # the nearest image is the query's identity seen by the query's own camera: junk
    result = evaluate(*one_query([5, 7, 5], [3, 1, 1], q_pid=5, q_cam=3), max_rank=2)
    # good at rank 1: non-interpolated 1/2, official (0/1 + 1/2) / 2 = 1/4, no rank-1 hit
    assert (result.ap_noninterp[0], result.ap_official[0]) == (0.5, 0.25)
    np.testing.assert_array_equal(result.cmc, [0, 1])


@pytest.mark.parametrize("evaluate", BOTH)
def test_queries_without_a_match_are_counted_and_excluded(evaluate) -> None:
    g_pids, g_cams = [1, 2, 3, 2], [1, 0, 1, 1]
    dist = np.array([[1.0, 2, 3, 4], [4.0, 3, 2, 1], [1.0, 2, 3, 4], [2.0, 1, 3, 4]])
    # query 0: pid 1 matched at rank 0; query 1: pid 9 absent; query 2: pid 3 only in its own camera;
    # query 3: pid 2 from camera 0, matched by gallery 3 (rank 2 once gallery 1 is dropped as junk)
    result = evaluate(dist, [1, 9, 3, 2], g_pids, [0, 0, 1, 0], g_cams, max_rank=3)
    assert (result.num_query, result.num_valid_query) == (4, 2)
    np.testing.assert_array_equal(result.valid_query, [0, 3])
    np.testing.assert_allclose(result.ap_noninterp, [1.0, 1 / 3], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(result.cmc, [0.5, 0.5, 1.0])


@pytest.mark.parametrize("evaluate", BOTH)
def test_ties_keep_gallery_order(evaluate) -> None:
    tied = np.ones(3)
    # negative, good, negative all at the same distance: the good image is second
    late = evaluate(*one_query([2, 1, 3], [0, 1, 0], dist=tied), max_rank=3)
    assert late.ap_noninterp[0] == 0.5
    np.testing.assert_array_equal(late.cmc, [0, 1, 1])
    # the same images with the good one first in the gallery
    early = evaluate(*one_query([1, 2, 3], [1, 0, 0], dist=tied), max_rank=3)
    assert early.ap_noninterp[0] == early.ap_official[0] == 1.0
    # tied junk never counts; tied good images are taken in gallery order (ranks 1, 2)
    mixed = evaluate(*one_query([-1, 2, 1, 1, 1], [0, 0, 0, 1, 2], dist=np.ones(5)), max_rank=3)
    assert mixed.ap_noninterp[0] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-15)


def test_result_accessors() -> None:
    result = evaluate_ranking(*one_query(**CASE_B), max_rank=20)
    assert (result.rank1, result.rank5, result.rank10, result.rank20) == (0.0, 1.0, 1.0, 1.0)
    d = result.as_dict()
    assert set(d) == {
        "rank1", "rank5", "rank10", "rank20", "map_official", "map_noninterp", "cmc", "num_query", "num_valid_query"
    }  # fmt: skip
    assert d["cmc"] == [0.0] + [1.0] * 19 and d["map_official"] == pytest.approx(1 / 3)
    with pytest.raises(AEAError, match="max_rank"):
        result.rank(21)
    assert "rank20" not in evaluate_ranking(*one_query(**CASE_B), max_rank=10).as_dict()


# ---------------------------------------------------------------- fast == loop


def random_problem(seed: int, num_query: int, num_gallery: int, *, ties: bool, num_ids: int = 12):
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(-1, num_ids, num_query)
    g_pids = rng.integers(-1, num_ids, num_gallery)
    q_cams = rng.integers(0, 3, num_query)
    g_cams = rng.integers(0, 3, num_gallery)
    if ties:  # integer distances: whole runs of equal values, goods tied with negatives and junk
        dist = rng.integers(0, 6, (num_query, num_gallery)).astype(np.float64)
    else:  # same identity closer, as after training
        same = q_pids[:, None] == g_pids[None, :]
        dist = (rng.random((num_query, num_gallery)) + 0.6 * ~same).astype(np.float32)
    return dist, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize(
    "seed, num_query, num_gallery, ties",
    [(0, 1, 1, True), (1, 7, 30, True), (2, 50, 200, True), (3, 50, 300, False), (4, 23, 997, False),
     (5, 64, 41, True), (6, 200, 513, False)],
)  # fmt: skip
@pytest.mark.parametrize("max_chunk", [7, 256])  # 7 divides none of the query counts
def test_fast_equals_loop(monkeypatch, seed, num_query, num_gallery, ties, max_chunk) -> None:
    problem = random_problem(seed, num_query, num_gallery, ties=ties)
    try:
        expected = evaluate_ranking_loop(*problem, max_rank=10)
    except AEAError:  # no query with a match: the fast path must agree
        with pytest.raises(AEAError, match="no query has a true match"):
            evaluate_ranking(*problem)
        return
    monkeypatch.setattr(metrics, "_MAX_CHUNK", max_chunk)
    assert_same(evaluate_ranking(*problem, max_rank=10), expected)
    assert_same(evaluate_ranking(torch.from_numpy(problem[0]), *problem[1:], max_rank=10), expected)


def test_torch_window_equals_numpy_window(monkeypatch) -> None:
    """The window of non-CPU devices (torch ops) selects the same cells as the CPU one (numpy)."""
    problem = random_problem(9, 60, 400, ties=True)
    expected = evaluate_ranking(*problem)
    assert_same(evaluate_ranking(np.asfortranarray(problem[0]), *problem[1:]), expected)  # strided rows
    monkeypatch.setattr(metrics, "_window", metrics._window_torch)
    assert_same(evaluate_ranking(*problem), expected)
    assert_same(evaluate_ranking(np.asfortranarray(problem[0]), *problem[1:]), expected)  # strided


def test_fast_equals_loop_with_extreme_distances() -> None:
    """Binning adapts to each query: tiny spreads, huge magnitudes, negatives, all equal, infinities."""
    rng = np.random.default_rng(7)
    _, q_pids, g_pids, q_cams, g_cams = random_problem(8, 40, 300, ties=False)
    base = rng.random((40, 300))
    infinite = np.where(base < 0.1, np.inf, np.where(base > 0.95, -np.inf, base))  # goods included
    for dist in (1e-30 * base, 1e6 + 1e-6 * base, -base, 1e30 * base, np.full((40, 300), 3.0), np.round(base, 2),
                 infinite, np.round(infinite, 1)):  # fmt: skip
        expected = evaluate_ranking_loop(dist, q_pids, g_pids, q_cams, g_cams, max_rank=10)
        assert_same(evaluate_ranking(dist, q_pids, g_pids, q_cams, g_cams, max_rank=10), expected)


def test_features_equal_ranking_of_their_distances() -> None:
    rng = np.random.default_rng(3)
    q_pids, g_pids = rng.integers(-1, 20, 60), rng.integers(-1, 20, 500)
    q_cams, g_cams = rng.integers(0, 4, 60), rng.integers(0, 4, 500)
    centres = rng.normal(size=(20, 16))
    q_feats = torch.from_numpy(centres[q_pids.clip(0)] + rng.normal(size=(60, 16)))
    g_feats = torch.from_numpy(centres[g_pids.clip(0)] + rng.normal(size=(500, 16)))
    dist = torch.cdist(q_feats, g_feats)
    np.testing.assert_allclose(pairwise_euclidean(q_feats, g_feats), dist, rtol=0, atol=1e-10)
    expected = evaluate_ranking(dist, q_pids, g_pids, q_cams, g_cams)
    assert_same(evaluate_features(q_feats, g_feats, q_pids, g_pids, q_cams, g_cams), expected)
    assert_same(evaluate_ranking_loop(dist, q_pids, g_pids, q_cams, g_cams), expected)
    # numpy and float32 features too
    result32 = evaluate_features(q_feats.float().numpy(), g_feats.float().numpy(), q_pids, g_pids, q_cams, g_cams)
    assert abs(result32.map_official - expected.map_official) < 1e-3


def test_big_gallery_is_chunked_and_exact(monkeypatch) -> None:
    """A budget forcing one or two queries per chunk gives the same numbers; no chunk is larger."""
    dist, q_pids, g_pids, q_cams, g_cams = random_problem(11, 9, 200_000, ties=False, num_ids=300)
    expected = evaluate_ranking_loop(dist, q_pids, g_pids, q_cams, g_cams)
    rows_seen = []
    good_ranks = metrics._good_ranks

    def spy(dist, *args):
        rows_seen.append(dist.shape[0])
        return good_ranks(dist, *args)

    monkeypatch.setattr(metrics, "_good_ranks", spy)
    per_query = 200_000 * metrics._BYTES_PER_CELL + metrics._BYTES_PER_QUERY
    budget = 2 * per_query * torch.get_num_threads()  # two queries per worker thread
    assert_same(evaluate_ranking(dist, q_pids, g_pids, q_cams, g_cams, memory_budget_bytes=budget), expected)
    assert max(rows_seen) == 2 and sum(rows_seen) == expected.num_valid_query
    rows_seen.clear()
    evaluate_ranking(dist, q_pids, g_pids, q_cams, g_cams, memory_budget_bytes=1)
    assert set(rows_seen) == {1}


def test_features_memory_stays_within_budget_for_a_500k_gallery() -> None:
    """A 500k gallery: the full 120 x 500k distance matrix (240 MB) is never held.

    Measured as the peak resident memory of a fresh process beyond what it holds before the call.
    """
    script = textwrap.dedent(
        """
        import resource, numpy as np, torch
        from aea.metrics import evaluate_features

        def status(key):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

        rng = np.random.default_rng(0)
        g_pids = rng.integers(1, 5000, 500_000); g_cams = rng.integers(0, 6, 500_000)
        q_pids = g_pids[:120].copy(); q_cams = (g_cams[:120] + 1) % 6
        centres = torch.from_numpy(rng.normal(size=(5000, 16)).astype(np.float32))
        g = centres[g_pids] + 0.3 * torch.randn(500_000, 16, generator=torch.Generator().manual_seed(0))
        q = centres[q_pids]
        evaluate_features(q[:2], g, q_pids[:2], g_pids, q_cams[:2], g_cams)  # warm up allocator and pool
        before = status("VmRSS")
        try:  # reset the high-water mark to the current resident set (Linux >= 4.0)
            open("/proc/self/clear_refs", "w").write("5")
            peak = lambda: status("VmHWM")
        except OSError:
            before = max(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
            peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        r = evaluate_features(q, g, q_pids, g_pids, q_cams, g_cams, memory_budget_bytes=96 * 2**20)
        print(peak() - before, r.num_valid_query, r.rank1)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    extra_bytes, num_valid, rank1 = out.stdout.split()
    assert int(num_valid) == 120 and float(rank1) > 0.5
    assert int(extra_bytes) < 96 * 2**20, f"peak grew by {int(extra_bytes) / 2**20:.0f} MiB"


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("evaluate", BOTH)
def test_bad_input_is_a_one_line_error(evaluate) -> None:
    dist, q_pids, g_pids, q_cams, g_cams = one_query(**CASE_A)
    with pytest.raises(AEAError, match="shape"):
        evaluate(dist[:, :3], q_pids, g_pids, q_cams, g_cams)
    with pytest.raises(AEAError, match="max_rank"):
        evaluate(dist, q_pids, g_pids, q_cams, g_cams, max_rank=0)
    with pytest.raises(AEAError, match="q_camids"):
        evaluate(dist, q_pids, g_pids, [0, 1], g_cams)
    with pytest.raises(AEAError, match="integers"):
        evaluate(dist, [1.5], g_pids, q_cams, g_cams)
    with pytest.raises(AEAError, match="no query has a true match"):
        evaluate(dist, [42], g_pids, q_cams, g_cams)
    broken = dist.copy()
    broken[0, 3] = np.nan  # a negative
    with pytest.raises(AEAError, match="NaN"):
        evaluate(broken, q_pids, g_pids, q_cams, g_cams)
    with pytest.raises(AEAError, match="NaN"):
        evaluate(np.where(np.arange(5) == 0, np.nan, dist), q_pids, g_pids, q_cams, g_cams)  # a good image


@pytest.mark.parametrize("evaluate", BOTH)
def test_infinite_distances_rank_first_or_last(evaluate) -> None:
    # gallery: negative +inf | good 1.0 | negative -inf | good +inf | negative +inf
    dist = np.array([np.inf, 1.0, -np.inf, np.inf, np.inf])
    result = evaluate(*one_query([2, 1, 3, 1, 4], [0, 1, 0, 2, 0], dist=dist), max_rank=4)
    # order: -inf, 1.0, then the +inf ties in gallery order: good ranks 1 and 3, as in case B
    assert (result.ap_official[0], result.ap_noninterp[0]) == (pytest.approx(1 / 3, abs=1e-15), 0.5)
    np.testing.assert_array_equal(result.cmc, [0, 1, 1, 1])


@pytest.mark.parametrize("budget", [0, -5, 1.5])
def test_bad_memory_budget(budget) -> None:
    with pytest.raises(AEAError, match="memory_budget_bytes"):
        evaluate_ranking(*one_query(**CASE_A), memory_budget_bytes=budget)


def test_feature_errors_and_all_junk_gallery() -> None:
    q, g = torch.zeros(1, 4), torch.zeros(3, 4)
    with pytest.raises(AEAError, match="dimensions"):
        evaluate_features(q, torch.zeros(3, 5), [1], [1, 1, 2], [0], [1, 1, 1])
    with pytest.raises(AEAError, match="labels"):
        evaluate_features(q, g, [1], [1, 1], [0], [1, 1])
    with pytest.raises(AEAError, match="no query has a true match"):
        evaluate_features(q, g, [1], [-1, -1, -1], [0], [1, 1, 1])


def test_thread_setting_is_restored() -> None:
    before = torch.get_num_threads()
    evaluate_ranking(*one_query(**CASE_A))
    assert torch.get_num_threads() == before
