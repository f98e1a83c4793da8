"""`zixflow-queue serve` with ZQ_LOG_FORMAT=json: every line of its output is a JSON object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import wire_message
from tests.zixflow_queue.test_service import TOKEN, ServiceProcess

pytestmark = pytest.mark.integration


def test_the_service_logs_json_lines_without_tokens(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**pipeline_env, "ZQ_API_TOKENS": TOKEN, "ZQ_LOG_FORMAT": "json"}
    service = ServiceProcess(env, tmp_path / "service.log").wait_ready()
    try:
        assert service.post({"message": wire_message()}).status_code == 202
    finally:
        service.stop()

    lines = [json.loads(line) for line in service.log_text().splitlines() if line.strip()]
    messages = [line["message"] for line in lines]
    assert any(m.startswith("accepting 1 API token(s)") for m in messages)  # the app's own
    assert any('"POST /v1/messages HTTP/1.1" 202' in m for m in messages)  # uvicorn's access
    assert all({"time", "level", "logger"} <= set(line) for line in lines)
    assert not any("color_message" in line for line in lines)
    assert TOKEN not in service.log_text()
