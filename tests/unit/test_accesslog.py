"""The batched access log: every line reaches the logger, as one line per request, in order."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from onshore.s3api.accesslog import AccessLog


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def capture() -> Capture:
    logger = logging.getLogger("test.accesslog")
    logger.handlers[:] = [handler := Capture()]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler


def lines(capture: Capture) -> list[dict[str, object]]:
    return [json.loads(line) for message in capture.messages for line in message.split("\n")]


def test_a_full_batch_goes_out_at_once(capture: Capture) -> None:
    async def scenario() -> None:
        log = AccessLog(logging.getLogger("test.accesslog"), max_lines=3, max_delay=60)
        for i in range(7):
            log.write({"n": i, "text": 'quote " and % sign'})
        assert len(capture.messages) == 2  # two full batches of three; one line waits
        log.flush()

    asyncio.run(scenario())
    assert [entry["n"] for entry in lines(capture)] == list(range(7))
    assert lines(capture)[0]["text"] == 'quote " and % sign'


def test_a_partial_batch_goes_out_after_the_delay(capture: Capture) -> None:
    async def scenario() -> None:
        log = AccessLog(logging.getLogger("test.accesslog"), max_lines=100, max_delay=0.05)
        log.write({"n": 1})
        log.write({"n": 2})
        assert capture.messages == []
        await asyncio.sleep(0.2)
        assert [entry["n"] for entry in lines(capture)] == [1, 2]
        log.write({"n": 3})  # a new batch arms a new timer
        await asyncio.sleep(0.2)

    asyncio.run(scenario())
    assert [entry["n"] for entry in lines(capture)] == [1, 2, 3]
    assert len(capture.messages) == 2


def test_without_an_event_loop_each_line_is_written_at_once(capture: Capture) -> None:
    log = AccessLog(logging.getLogger("test.accesslog"))
    log.write({"n": 1})
    assert [entry["n"] for entry in lines(capture)] == [1]
