"""Queue WhatsApp reply-button messages for Zixflow from a web app.

    import producer
    job_id = producer.enqueue({"to": "919876543210", "phoneId": "1234", "interactive": {...}})
    producer.get_status(job_id)

Producers need only Redis: no Zixflow credentials, no worker code.
"""

from producer.enqueue import Producer, enqueue, enqueue_many, get_status
from producer.errors import IdempotencyConflict, ProducerError, RedisUnavailable, ValidationError
from producer.message import ReplyButtonMessage, reply_buttons
from producer.status import JobState, JobStatus

__all__ = [
    "IdempotencyConflict",
    "JobState",
    "JobStatus",
    "Producer",
    "ProducerError",
    "RedisUnavailable",
    "ReplyButtonMessage",
    "ValidationError",
    "enqueue",
    "enqueue_many",
    "get_status",
    "reply_buttons",
]
