"""A local stand-in for the Zixflow endpoint, and for its recipients replying: for tests, the demo
and the benchmarks."""

from zixflow_queue.sandbox.client import SandboxClient
from zixflow_queue.sandbox.faults import FaultPlan
from zixflow_queue.sandbox.replies import ReplyPlan
from zixflow_queue.sandbox.server import Sandbox

__all__ = ["FaultPlan", "ReplyPlan", "Sandbox", "SandboxClient"]
