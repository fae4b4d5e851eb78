"""P x K sampler: batch structure, one batch per identity per epoch, replacement, determinism."""

from __future__ import annotations

from collections import Counter

import pytest

from aea.data.sampler import PKBatchSampler
from aea.errors import AEAError

# 10 identities; pid 7 has a single image, pid 3 two, the rest five
PIDS = [pid for pid in range(10) for _ in range(1 if pid == 7 else 2 if pid == 3 else 5)]


def batches(**kw) -> list[list[tuple[int, int]]]:
    args = {"p": 3, "k": 4, "seed": 0, "epoch": 0, **kw}
    return list(PKBatchSampler(PIDS, **args))


def test_p_identities_times_k_images_and_each_identity_in_one_batch() -> None:
    epoch = batches()
    assert len(epoch) == len(PKBatchSampler(PIDS, p=3, k=4, seed=0, epoch=0)) == 10 // 3
    seen = []
    for batch in epoch:
        counts = Counter(PIDS[i] for i, _ in batch)
        assert len(batch) == 12 and len(counts) == 3 and set(counts.values()) == {4}
        seen += list(counts)
    assert len(seen) == len(set(seen)) == 9  # 10 % 3 = 1 identity sits this epoch out
    left_out = [set(range(10)) - {PIDS[i] for b in batches(epoch=e) for i, _ in b} for e in range(12)]
    assert all(len(s) == 1 for s in left_out) and len(set().union(*left_out)) > 1  # a different one each time


def test_small_identities_are_sampled_with_replacement_others_without() -> None:
    for epoch in range(20):
        for batch in batches(epoch=epoch):
            by_pid: dict[int, list[int]] = {}
            for index, _ in batch:
                by_pid.setdefault(PIDS[index], []).append(index)
            for pid, indices in by_pid.items():
                if pid == 7:
                    assert indices == [PIDS.index(7)] * 4
                elif pid == 3:
                    assert set(indices) <= {PIDS.index(3), PIDS.index(3) + 1}
                else:
                    assert len(set(indices)) == 4  # five images: four distinct


def test_batches_are_a_pure_function_of_seed_and_epoch() -> None:
    assert batches(epoch=4) == batches(epoch=4)
    assert batches(epoch=4) != batches(epoch=5)
    assert batches(seed=1) != batches(seed=0)
    aug = [s for b in batches() for _, s in b]
    assert len(set(aug)) == len(aug)  # every position gets its own augmentation seed


def test_exactly_num_ids_over_p_batches() -> None:
    assert len(batches(p=10, k=2)) == 1
    assert len(batches(p=1, k=1)) == 10


@pytest.mark.parametrize("kw, match", [({"p": 11}, "fewer than P=11"), ({"p": 0}, "P=0"), ({"k": 0}, "K=0")])
def test_impossible_batch_shapes(kw, match) -> None:
    with pytest.raises(AEAError, match=match):
        batches(**kw)
