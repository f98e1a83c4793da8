"""The hashes a sorted-set index lists (failed events, Zixflow events), read in one round trip."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from producer.keys import Family

Ranked = Sequence[tuple[str, float]]
"""(id, score) pairs, as ZREVRANGE ... WITHSCORES answers them."""


def newest(
    client: redis.Redis, index: str, start: int = 0, count: int | None = None
) -> list[tuple[str, float]]:
    """`count` ids (all: None) of the index from `start`, newest (highest score) first, with
    their scores."""
    stop = -1 if count is None else start + count - 1
    ranked: list[tuple[str, float]] = client.zrevrange(index, start, stop, withscores=True)  # type: ignore[assignment]
    return ranked


def hashes(
    client: redis.Redis, family: Family, ranked: Ranked
) -> list[tuple[str, float, dict[str, str]]]:
    """Each id with its score and its hash; ids whose hash has expired are left out."""
    pipe = client.pipeline(transaction=False)
    for member, _ in ranked:
        pipe.hgetall(family(member))
    found: list[dict[str, str]] = pipe.execute()
    return [(member, score, fields) for (member, score), fields in zip(ranked, found, strict=True)
            if fields]  # fmt: skip
