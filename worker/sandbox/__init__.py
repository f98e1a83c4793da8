"""A local stand-in for the Zixflow endpoint, for tests, the demo and the benchmarks."""

from worker.sandbox.client import SandboxClient
from worker.sandbox.faults import FaultPlan
from worker.sandbox.server import Sandbox

__all__ = ["FaultPlan", "Sandbox", "SandboxClient"]
