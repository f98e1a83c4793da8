"""Celery workers that deliver queued reply-button messages to Zixflow.

`celery -A worker worker` finds the app here. It loads on first use, so that tools living in
this package (the sandbox) start without Celery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.celery_app import app

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from worker.celery_app import app  # noqa: PLC0415 - loaded on first use, see above

        return app
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
