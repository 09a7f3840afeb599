"""The four API endpoints (``/v1/external/...``): each asks the state and answers its JSON or error row.

A route is ``(exchange, path match, query, path, fault) -> None`` and answers through the exchange; the
error each endpoint answers, and in which order it checks, is decided by ``state`` (see the package
docstring).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from p1_retrain.emulator import errors
from p1_retrain.emulator.exchange import HttpExchange

Route = Callable[[HttpExchange, re.Match[str], dict[str, str], str, str | None], None]


def _answer(exchange: HttpExchange, call: Callable[[], dict[str, Any]]) -> None:
    try:
        payload = call()
    except errors.ApiError as error:
        exchange.send_api_error(error)
        return
    exchange.send_json(200, payload)


def upload_url(
    exchange: HttpExchange, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
) -> None:
    """Endpoint 1: a new retrain job and its presigned upload URL."""
    state = exchange.server.state
    _answer(
        exchange, lambda: state.create_job(exchange.api_key(), query.get("filename"), exchange.url_base())
    )


def retrain_status(
    exchange: HttpExchange, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
) -> None:
    """Endpoint 2: a retrain job's status (a freshly signed ``download_url`` once finished)."""
    state = exchange.server.state
    _answer(exchange, lambda: state.job_status(exchange.api_key(), match["id"], exchange.url_base()))


def update_model(
    exchange: HttpExchange, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
) -> None:
    """Endpoint 3: switch the model to a finished retrain job."""
    state = exchange.server.state
    _answer(exchange, lambda: state.switch_model(exchange.api_key(), match["id"]))


def training_status(
    exchange: HttpExchange, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
) -> None:
    """Endpoint 4: a training process's status (a freshly signed ``result_url`` once finished)."""
    state = exchange.server.state
    process_id = query.get("external_process_id")
    _answer(exchange, lambda: state.training_status(exchange.api_key(), process_id, exchange.url_base()))
