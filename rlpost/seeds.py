"""Seeds derived in one place: a stable 31-bit seed from a base seed and the names of what it
seeds (the same parts give the same seed in every process and Python version)."""

from __future__ import annotations

import hashlib


def derive_seed(*parts: int | str) -> int:
    """A seed in [0, 2^31) from `parts` (e.g. the run seed, "turn", 3), by BLAKE2b of their repr."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (1 << 31)
