"""P x K identity sampling: P identities per batch, K images each.

One epoch: the training identities in a random order, cut into groups of P
(the ``num_ids % P`` left over sit this epoch out), so each identity that is
drawn appears in exactly one batch and there are ``num_ids // P`` batches.  An
identity with at least K images gives K distinct ones; one with fewer is
sampled with replacement.

Every draw is a pure function of (seed, epoch, position) through
``derive_seed``: the identity order of (seed, epoch), the images of the
identity at (batch, slot), and the augmentation seed handed to the dataset for
each position.  So batches do not depend on ``num_workers`` or on what ran
before, and a run resumed at epoch e sees exactly the batches it would have.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from aea.errors import AEAError
from aea.seeding import derive_seed

# derive_seed streams
_S_ORDER, _S_IMAGES, _S_AUGMENT = 0, 1, 2

Sample = tuple[int, int]  # (index into the records, augmentation seed)


class PKBatchSampler(Sampler[list[Sample]]):
    """Batches of P x K (index, augmentation seed) pairs for one epoch; see the module docstring."""

    def __init__(self, pids: Sequence[int], *, p: int, k: int, seed: int, epoch: int) -> None:
        if p < 1 or k < 1:
            raise AEAError(f"bad batch shape P={p}, K={k}; both must be >= 1")
        by_pid: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            by_pid[int(pid)].append(index)
        if len(by_pid) < p:
            raise AEAError(f"the training set has {len(by_pid)} identities, fewer than P={p} per batch; lower P")
        self._indices = [np.asarray(by_pid[pid]) for pid in sorted(by_pid)]
        self.p, self.k, self.seed, self.epoch = p, k, seed, epoch

    def __len__(self) -> int:
        return len(self._indices) // self.p

    def __iter__(self) -> Iterator[list[Sample]]:
        order = np.random.default_rng(derive_seed(self.seed, self.epoch, _S_ORDER)).permutation(len(self._indices))
        for b in range(len(self)):
            batch: list[Sample] = []
            for slot, identity in enumerate(order[b * self.p:(b + 1) * self.p]):
                pool = self._indices[identity]
                rng = np.random.default_rng(derive_seed(self.seed, self.epoch, _S_IMAGES, b, slot))
                chosen = rng.choice(pool, size=self.k, replace=len(pool) < self.k)
                for index in chosen:
                    position = len(batch) + b * self.p * self.k
                    batch.append((int(index), derive_seed(self.seed, self.epoch, _S_AUGMENT, position)))
            yield batch
