"""Counter-based seeding: every random draw in ``inpaint.data`` is a pure function of integer keys.

Masks, crops and flips are derived from ``(seed, stream, epoch, index)`` rather than from a generator that is advanced
as samples are produced, so a sample does not depend on which worker or rank produced it, nor on how many there are.
"""

from __future__ import annotations

import hashlib

import numpy as np

# Stream tags keep the train / val / test draws of one seed independent of each other.
STREAM_TRAIN = 0
STREAM_VAL = 1
STREAM_TEST = 2
STREAM_TAGS = {"train": STREAM_TRAIN, "val": STREAM_VAL, "test": STREAM_TEST}

_UINT63 = (1 << 63) - 1


def rng_for(*keys: int) -> np.random.Generator:
    """A fresh NumPy generator that depends only on ``keys`` (non-negative ints, any number of them).

    ``SeedSequence`` mixes the keys so that neighbouring indices give statistically independent streams.
    """
    entropy = [int(k) & _UINT63 for k in keys]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def stable_hash(text: str) -> int:
    """A 63-bit hash of ``text`` that is the same in every process (unlike ``hash()``, which is salted)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _UINT63
