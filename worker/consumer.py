"""A Celery consumer that dead-letters the messages it cannot run instead of only logging them."""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer

from producer.keys import TASK_NAME
from worker.poison import dead_letter


class DeadLetteringConsumer(Consumer):  # type: ignore[misc]
    """Stores undecodable, unknown and invalid messages in the dead-letter store, then acks."""

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        dead_letter(f"undecodable message: {exc}", message.body)
        super().on_decode_error(message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        dead_letter("message in an unknown format", message.body)
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        task = (message.headers or {}).get("task", "?")
        dead_letter(f"unknown task {task!r}", message.body)
        super().on_unknown_task(body, message, exc)

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        """Dead-letter a message Celery cannot turn into a request, instead of dying on it.

        A task message whose body is not `[args, kwargs, embed]` raises outside Celery's own
        handlers, stops the worker and, being returned to the queue, the next one too.
        """
        handle = super().create_task_handler(*args, **kwargs)

        def on_task_received(message: Any) -> None:
            task = (message.headers or {}).get("task")
            if task != TASK_NAME:  # Celery's own tasks too: this queue carries only deliveries
                dead_letter(f"a task this worker does not run: {task!r}", message.body)
                message.ack()
                return
            try:
                handle(message)
            except (KeyError, TypeError, ValueError) as error:
                self.on_invalid_task(None, message, error)

        return on_task_received

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        dead_letter(f"invalid task message: {exc}", message.body)
        super().on_invalid_task(body, message, exc)
