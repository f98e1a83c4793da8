"""Sentinel URLs in kombu's form: `sentinel://host:port;sentinel://host:port/db`.

Celery's broker takes them as they are; the producer's and the workers' own clients ask the same
Sentinels for the master named by ZQ_SENTINEL_MASTER. kombu reads the database number and the
credentials from the first address only, so they are read from there here too, and a later
address that names another database is refused rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

SCHEME = "sentinel"
DEFAULT_PORT = 26379
FORM = "sentinel://host:port[/db] addresses joined by ';'"


@dataclass(frozen=True)
class SentinelURL:
    """The Sentinels to ask, and how to talk to the master they name."""

    sentinels: tuple[tuple[str, int], ...]
    db: int
    username: str | None
    password: str | None

    @property
    def master_options(self) -> dict[str, str | int | None]:
        """Database and credentials of connections to the master."""
        return {"db": self.db, "username": self.username, "password": self.password}


def is_sentinel_url(url: str) -> bool:
    """Whether `url` names Sentinels rather than one Redis server."""
    return url.startswith(f"{SCHEME}://")


def parse_sentinel_url(url: str) -> SentinelURL:
    """Read a sentinel URL; ValueError names what is wrong with it."""
    parts = [_split(part) for part in url.split(";")]
    first = parts[0]
    db = _database(first)
    for part in parts[1:]:
        if part.path.strip("/") and _database(part) != db:
            raise ValueError(
                f"the database must be named on the first address, where kombu reads it "
                f"(e.g. sentinel://host:port/{_database(part)};sentinel://host:port)"
            )
    return SentinelURL(
        sentinels=tuple((str(part.hostname), part.port or DEFAULT_PORT) for part in parts),
        db=db,
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password else None,
    )


def _split(part: str) -> SplitResult:
    try:
        split = urlsplit(part)
        split.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        raise ValueError(f"must be {FORM}: {part!r} has a bad port") from None
    if split.scheme != SCHEME or not split.hostname or split.query or split.fragment:
        raise ValueError(f"must be {FORM}, got {part!r}")
    return split


def _database(part: SplitResult) -> int:
    number = part.path.strip("/") or "0"
    if not number.isdigit():
        raise ValueError(f"the database after the address must be a number, got {number!r}")
    return int(number)
