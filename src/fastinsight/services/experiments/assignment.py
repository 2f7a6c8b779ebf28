"""Deterministic assignment of users to experiments and arms, with no per-user state.

Two independent hashes of the user id (BLAKE2b, so the same in every process, on every
machine and after restarts; Python's own ``hash`` is salted per process):

- the *traffic bucket* ``bucket("traffic", user)`` in [0, 1) is the same for every
  experiment, so experiments on disjoint traffic slices never share a user;
- the *arm bucket* ``bucket(salt, user)`` picks the arm by the cumulative shares.
  Each experiment has its own salt, so whether a user is in arm A of one experiment
  says nothing about its arm in the next one.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

TRAFFIC_SALT = "traffic"
_SCALE = float(2**64)


def bucket(salt: str, user_id: str) -> float:
    """A number in [0, 1), uniform over user ids, fixed for (salt, user)."""
    digest = hashlib.blake2b(f"{salt}\x1f{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def traffic_bucket(user_id: str) -> float:
    return bucket(TRAFFIC_SALT, user_id)


class ArmPicker:
    """Maps an arm bucket to an arm index by the cumulative shares (which sum to 1)."""

    def __init__(self, shares: Sequence[float]) -> None:
        if not shares:
            raise ValueError("at least one share")
        total = sum(shares)
        self.edges = [c / total for c in accumulate(shares)][:-1]  # the last edge is 1

    def pick(self, value: float) -> int:
        return bisect_right(self.edges, value)


def assign(salt: str, shares: Sequence[float], user_id: str) -> int:
    """The arm index of ``user_id`` (convenience for one-off calls and tests)."""
    return ArmPicker(shares).pick(bucket(salt, user_id))
