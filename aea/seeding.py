"""Seeding of every random source: python, numpy, torch."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed derived deterministically from integers (seed, epoch, index, ...).

    Used wherever randomness must not depend on how work is split (resume,
    dataloader workers): the same parts always give the same seed.
    """
    seq = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts])
    return int(seq.generate_state(1, dtype=np.uint64)[0]) >> 1
