"""The recipient's replies: Zixflow's incoming-message events, read and put on their jobs."""

from zixflow_queue.replies.inbound import Inbound, read_event
from zixflow_queue.replies.recorder import InboundRecorder

__all__ = ["Inbound", "InboundRecorder", "read_event"]
