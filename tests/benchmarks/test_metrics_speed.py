"""Speed and memory of the sort-free metrics against the stable-sort loop, at Market-1501 size.

``pytest tests/benchmarks/test_metrics_speed.py --benchmark-only -s``.  A seeded synthetic problem
with Market-1501's shape: 3,368 queries x 15,913 gallery images, float32 distances of
identity-structured features; 750 identities with 14 gallery images each, 6 cameras, 2,800 junk
(pid -1) and 2,613 distractors (pid 0).  The goal checked here: the fast path takes at most 1/20 of
the loop path's time in the same run, with the same numbers (1e-9), and less than 2 GB of extra
peak memory.  Peak memory is measured in a fresh process as the growth of its resident-set
high-water mark (VmHWM, reset just before the call) over the resident set before the call.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from aea.metrics import RankingResult, evaluate_ranking, evaluate_ranking_loop

NUM_QUERY, NUM_GALLERY = 3368, 15_913
NUM_IDS, PER_ID, NUM_CAMS, NUM_JUNK = 750, 14, 6, 2800
SPEEDUP_GOAL = 20.0
MEMORY_GOAL = 2 * 2**30


def market_like(seed: int = 0, dim: int = 64, noise: float = 1.05) -> tuple[np.ndarray, ...]:
    """Distances and labels shaped like the Market-1501 test split (rank-1 ~0.9, mAP ~0.7)."""
    rng = np.random.default_rng(seed)
    num_distractor = NUM_GALLERY - NUM_IDS * PER_ID - NUM_JUNK
    g_pids = np.concatenate(
        [np.repeat(np.arange(1, NUM_IDS + 1), PER_ID), np.zeros(num_distractor, np.int64), -np.ones(NUM_JUNK, np.int64)]
    )
    g_pids = g_pids[rng.permutation(NUM_GALLERY)]
    g_cams = rng.integers(0, NUM_CAMS, NUM_GALLERY)
    q_pids = rng.integers(1, NUM_IDS + 1, NUM_QUERY)
    q_cams = rng.integers(0, NUM_CAMS, NUM_QUERY)
    centres = rng.normal(size=(NUM_IDS + 1, dim)).astype(np.float32)

    def features(pids: np.ndarray) -> torch.Tensor:
        # identities around their centre; distractors and junk anywhere
        base = np.where((pids > 0)[:, None], centres[pids.clip(0)], rng.normal(size=(len(pids), dim)))
        return torch.from_numpy((base + noise * rng.normal(size=base.shape)).astype(np.float32))

    dist = torch.cdist(features(q_pids), features(g_pids)).numpy()
    return dist, q_pids, g_pids, q_cams, g_cams


@pytest.fixture(scope="module")
def market() -> tuple[np.ndarray, ...]:
    return market_like()


def best_seconds(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def assert_same(a: RankingResult, b: RankingResult) -> None:
    np.testing.assert_array_equal(a.valid_query, b.valid_query)
    for field in ("cmc", "ap_official", "ap_noninterp"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=0, atol=1e-9)
    assert abs(a.map_official - b.map_official) <= 1e-9 and abs(a.map_noninterp - b.map_noninterp) <= 1e-9


PEAK_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from aea.metrics import evaluate_ranking, evaluate_ranking_loop

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

    dist = np.load(sys.argv[1])
    labels = np.load(sys.argv[2])
    q_pids, g_pids, q_cams, g_cams = (labels[k] for k in ("q_pids", "g_pids", "q_cams", "g_cams"))
    evaluate = {"fast": evaluate_ranking, "loop": evaluate_ranking_loop}[sys.argv[3]]
    evaluate(dist[:64], q_pids[:64], g_pids, q_cams[:64], g_cams)  # warm-up: imports, thread pool
    before = status("VmRSS")
    try:  # reset the high-water mark to the current resident set (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        peak = lambda: status("VmHWM")
    except OSError:  # the process peak so far; the .npy load adds no transient copy
        before = max(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    evaluate(dist, q_pids, g_pids, q_cams, g_cams)
    print(peak() - before)
    """
)


def peak_extra_bytes(market: tuple[np.ndarray, ...], path: str, workdir: Path) -> int:
    """Peak memory the ``path`` ('fast' or 'loop') adds to a process holding the distance matrix."""
    dist, q_pids, g_pids, q_cams, g_cams = market
    np.save(workdir / "dist.npy", dist)
    np.savez(workdir / "labels.npz", q_pids=q_pids, g_pids=g_pids, q_cams=q_cams, g_cams=g_cams)
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(workdir / "dist.npy"), str(workdir / "labels.npz"), path],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return int(out.stdout.split()[-1])


def test_loop_path_speed(benchmark, market) -> None:
    result = benchmark.pedantic(evaluate_ranking_loop, args=market, rounds=2, iterations=1)
    assert result.num_valid_query == NUM_QUERY


def test_fast_path_speed(benchmark, market) -> None:
    result = benchmark.pedantic(evaluate_ranking, args=market, rounds=10, iterations=1, warmup_rounds=1)
    assert result.num_valid_query == NUM_QUERY


def test_fast_path_speedup_and_memory(benchmark, market, tmp_path) -> None:
    """Both paths timed in this run (best of several, interleaved) and their peak memory."""
    loop = evaluate_ranking_loop(*market)
    fast = evaluate_ranking(*market)
    assert_same(fast, loop)
    loop_seconds = fast_seconds = float("inf")
    for _ in range(2):  # interleaved, so that a busy spell hits both
        loop_seconds = min(loop_seconds, best_seconds(lambda: evaluate_ranking_loop(*market), 1))
        fast_seconds = min(fast_seconds, best_seconds(lambda: evaluate_ranking(*market), 4))
    ratio = loop_seconds / fast_seconds
    fast_peak = peak_extra_bytes(market, "fast", tmp_path)
    loop_peak = peak_extra_bytes(market, "loop", tmp_path)
    matrix_mib = market[0].nbytes / 2**20
    print(
        f"\nmetrics at Market-1501 size ({NUM_QUERY} x {NUM_GALLERY} float32 = {matrix_mib:.0f} MiB, "
        f"rank-1 {fast.rank1:.3f}, mAP {fast.map_official:.3f} official / {fast.map_noninterp:.3f} non-interpolated; "
        f"torch threads {torch.get_num_threads()}):\n"
        f"  loop {loop_seconds:.3f} s, fast {fast_seconds:.4f} s, ratio {ratio:.1f} (goal >= {SPEEDUP_GOAL:.0f})\n"
        f"  peak extra memory: fast {fast_peak / 2**20:.0f} MiB, loop {loop_peak / 2**20:.0f} MiB "
        f"(resident high-water mark growth in a fresh process)"
    )
    benchmark.extra_info.update(
        loop_seconds=loop_seconds, fast_seconds=fast_seconds, ratio=ratio, fast_peak_bytes=fast_peak,
        loop_peak_bytes=loop_peak,
    )  # fmt: skip
    benchmark.pedantic(evaluate_ranking, args=market, rounds=1, iterations=1)
    assert ratio >= SPEEDUP_GOAL, f"fast path only {ratio:.1f}x faster than the loop"
    assert fast_peak < MEMORY_GOAL
