"""The `zixflow-queue` command line."""

from zixflow_queue.cli.main import main

__all__ = ["main"]
