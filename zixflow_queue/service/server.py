"""Running the service under uvicorn: one process, or several sharing the port."""

from __future__ import annotations

import logging
import logging.config

import uvicorn

from zixflow_queue.service.logs import log_config
from zixflow_queue.service.settings import service_settings

log = logging.getLogger(__name__)


def serve(host: str, port: int, *, workers: int = 1, access_log: bool = True) -> None:
    """Serve until SIGINT or SIGTERM; a bad setting raises ConfigurationError before that."""
    # Checked here, once: with several workers, each would otherwise fail with a traceback.
    settings = service_settings()
    logs = log_config(settings.log_format)
    logging.config.dictConfig(logs)
    log.info(
        "accepting %d API token(s); bodies up to %d bytes, batches up to %d items",
        *(len(settings.api_tokens), settings.max_body_bytes, settings.max_batch_items),
    )
    uvicorn.run(
        "zixflow_queue.service.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        server_header=False,
        log_config=logs,
    )
