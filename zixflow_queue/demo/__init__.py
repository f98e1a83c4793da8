"""`zixflow-queue demo`: the whole pipeline on this machine, with a summary of how it went.

Redis is the one at REDIS_URL if it answers, else a private redis-server, else an embedded
Redis-compatible server (for trying only). Zixflow is the sandbox, misbehaving now and then,
unless ZIXFLOW_API_KEY and ZIXFLOW_BASE_URL both point at the real API.
"""

from zixflow_queue.demo.run import Recipient, run_demo

__all__ = ["Recipient", "run_demo"]
