"""Queue WhatsApp reply-button messages for Zixflow from a web app.

    import producer
    job_id = producer.enqueue({"to": "919876543210", "phoneId": "1234", "interactive": {...}})
    producer.get_status(job_id)

Producers need only Redis: no Zixflow credentials, no worker code.
"""

from producer.enqueue import Producer, cancel, enqueue, enqueue_many, get_status
from producer.errors import (
    ConfigurationError,
    IdempotencyConflict,
    OutcomeUnknown,
    ProducerError,
    RedisUnavailable,
    StorageError,
    ValidationError,
)
from producer.events import InvalidEvent, verify_event
from producer.jobs import Job
from producer.message import ReplyButtonMessage, reply_buttons
from producer.status import JobState, JobStatus

__all__ = [
    "ConfigurationError",
    "IdempotencyConflict",
    "InvalidEvent",
    "Job",
    "JobState",
    "JobStatus",
    "OutcomeUnknown",
    "Producer",
    "ProducerError",
    "RedisUnavailable",
    "ReplyButtonMessage",
    "StorageError",
    "ValidationError",
    "cancel",
    "enqueue",
    "enqueue_many",
    "get_status",
    "reply_buttons",
    "verify_event",
]
