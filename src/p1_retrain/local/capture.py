"""Capture what Lambda handlers write, the way Lambda sends it to CloudWatch Logs.

While the local stack runs, ``sys.stdout`` / ``sys.stderr`` are routers: a write from a thread that is
running a handler goes to that stack's log, any other write goes on to the process's stream of the
moment. Whoever replaces ``sys.stdout`` meanwhile (a test runner does, between test phases) gets a
router put back in front of its stream when the next handler starts. Logging handlers bound to the
console (Powertools loggers bind ``sys.stdout`` when first created) are re-pointed at the routers, and
put back when the stack stops. Records of extra named loggers (the API client's HTTP log) are captured
too, whichever thread emits them, unless they already reach a routed handler.

The logging configuration the handlers' libraries make (Powertools configures its loggers and copies
that configuration to library loggers, once per process) is undone when the stack stops: every named
logger gets back the state it had before, and loggers created meanwhile are reset to pristine ones. So
each stack starts like a fresh Lambda process, and nothing leaks into the code that runs after it.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass(frozen=True)
class LogLine:
    """One line written while a function ran (``function`` is the deployed function's name)."""

    function: str
    stream: str
    text: str


class _Router(io.TextIOBase):
    """A text stream that keeps handler-thread writes and passes the rest on."""

    def __init__(self, target: TextIO, capture: OutputCapture, stream: str) -> None:
        super().__init__()
        self.target = target
        self._capture = capture
        self._stream = stream

    def _passthrough(self) -> TextIO:
        """The process's stream now (it may have been replaced since this router was made)."""
        current = getattr(sys, self._stream)
        return self.target if isinstance(current, _Router) else current

    def write(self, text: str) -> int:
        if not self._capture.write(self._stream, text):
            self._passthrough().write(text)
        return len(text)

    def flush(self) -> None:
        self._passthrough().flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")

    def writable(self) -> bool:
        return True


class _RecordHandler(logging.Handler):
    """Keeps formatted records of a named logger as log lines."""

    def __init__(self, capture: OutputCapture) -> None:
        super().__init__(logging.NOTSET)
        self._capture = capture
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not self._capture.reaches_console(record.name, record.levelno):
                self._capture.add(self._capture.current_function() or "-", "logging", self.format(record))
        except Exception:  # noqa: BLE001 - a log handler must never raise into the code that logs
            self.handleError(record)


class OutputCapture:
    """Collects handler output; ``install()`` / ``uninstall()`` bracket the stack's lifetime."""

    def __init__(self, named_loggers: tuple[str, ...] = (), function_loggers: tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._lines: list[LogLine] = []
        self._partial: dict[tuple[int, str], str] = {}
        self._named_loggers = named_loggers
        self.function_loggers = set(function_loggers) | set(named_loggers)
        self._record_handler = _RecordHandler(self)
        self._routers: dict[str, _Router] = {}
        self._rebound: list[tuple[logging.StreamHandler, TextIO]] = []
        self._saved_streams: tuple[TextIO, TextIO] | None = None
        self._logging: _LoggingSnapshot | None = None

    # -- lifetime -------------------------------------------------------------------------------------
    def install(self) -> None:
        self._logging = _LoggingSnapshot.take()
        self._saved_streams = (sys.stdout, sys.stderr)
        self.ensure_routed()
        self.rebind_console_handlers()
        for name in self._named_loggers:
            logging.getLogger(name).addHandler(self._record_handler)

    def ensure_routed(self) -> None:
        """Put a router in front of ``sys.stdout`` / ``sys.stderr`` unless one is there (once installed)."""
        with self._lock:
            if self._saved_streams is None:
                return
            for name in ("stdout", "stderr"):
                current = getattr(sys, name)
                if not isinstance(current, _Router):
                    router = _Router(current, self, name)
                    self._routers[name] = router
                    setattr(sys, name, router)

    def rebind_console_handlers(self) -> None:
        """Point console logging handlers at the routers: those writing to the process's stdout/stderr,
        and every stream handler of the functions' own loggers (the Powertools service loggers, which
        keep the handler an earlier stack or test bound to whatever stdout was then)."""
        assert self._saved_streams is not None
        out, err = self._routers["stdout"], self._routers["stderr"]
        console = {
            id(sys.__stdout__): out,
            id(sys.__stderr__): err,
            id(self._saved_streams[0]): out,
            id(self._saved_streams[1]): err,
        }
        for logger_name, handler in _stream_handlers():
            stream = handler.stream
            if isinstance(stream, _Router):
                continue
            router = console.get(id(stream))
            if router is None and _within(logger_name, self.function_loggers):
                router = err if stream in (sys.__stderr__, self._saved_streams[1]) else out
            if router is not None:
                self._rebound.append((handler, stream))
                _set_stream(handler, router)

    def uninstall(self) -> None:
        for name in self._named_loggers:
            logging.getLogger(name).removeHandler(self._record_handler)
        for handler, stream in reversed(self._rebound):
            if isinstance(handler.stream, _Router):
                _set_stream(handler, stream)
        for _, handler in _stream_handlers():  # created while the stack ran: give them the real console
            if isinstance(handler.stream, _Router):
                _set_stream(handler, handler.stream.target)
        self._rebound.clear()
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if isinstance(current, _Router):
                setattr(sys, name, current.target)
        self._saved_streams = None
        if self._logging is not None:
            self._logging.restore()
            self._logging = None
        self._flush_partial("-")

    # -- handler context --------------------------------------------------------------------------------
    @contextmanager
    def function_context(self, function: str) -> Iterator[None]:
        """Mark the current thread as running ``function`` (its writes become log lines)."""
        self.ensure_routed()
        previous = getattr(self._local, "function", None)
        self._local.function = function
        try:
            yield
        finally:
            self._flush_partial(function, threading.get_ident())
            self._local.function = previous

    def reaches_console(self, name: str, level: int) -> bool:
        """Whether a record of logger ``name`` is already written to a routed console stream (then the
        routers capture it and a second copy is not kept)."""
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            for handler in logger.handlers:
                if isinstance(getattr(handler, "stream", None), _Router) and level >= handler.level:
                    return True
            logger = logger.parent if logger.propagate else None
        return False

    def current_function(self) -> str | None:
        return getattr(self._local, "function", None)

    # -- writing ------------------------------------------------------------------------------------------
    def write(self, stream: str, text: str) -> bool:
        """Keep ``text`` if the current thread runs a function; return whether it was kept."""
        function = self.current_function()
        if function is None:
            return False
        key = (threading.get_ident(), stream)
        with self._lock:
            pending = self._partial.pop(key, "") + text
            *complete, rest = pending.split("\n")
            if rest:
                self._partial[key] = rest
            self._lines.extend(LogLine(function, stream, line) for line in complete if line)
        return True

    def add(self, function: str, stream: str, text: str) -> None:
        with self._lock:
            self._lines.extend(LogLine(function, stream, line) for line in text.splitlines() if line)

    def _flush_partial(self, function: str, thread_id: int | None = None) -> None:
        with self._lock:
            for key in [key for key in self._partial if thread_id is None or key[0] == thread_id]:
                self._lines.append(LogLine(function, key[1], self._partial.pop(key)))

    def lines(self) -> list[LogLine]:
        with self._lock:
            return list(self._lines)


class _LoggingSnapshot:
    """The state of every named logger at one moment, and how to go back to it."""

    _PRISTINE = frozenset(logging.Logger("pristine").__dict__)

    def __init__(self, states: dict[str, dict[str, Any]]) -> None:
        self._states = states

    @classmethod
    def take(cls) -> _LoggingSnapshot:
        states = {}
        for name, logger in _named_loggers():
            state = dict(logger.__dict__)
            state["handlers"], state["filters"] = list(logger.handlers), list(logger.filters)
            states[name] = state
        return cls(states)

    def restore(self) -> None:
        for name, logger in _named_loggers():
            parent = logger.parent  # keep the hierarchy as it is now
            state = self._states.get(name)
            if state is None:
                state = {key: value for key, value in logger.__dict__.items() if key in self._PRISTINE}
                state.update(level=logging.NOTSET, propagate=True, handlers=[], filters=[], disabled=False)
            logger.__dict__.clear()
            logger.__dict__.update(state, handlers=list(state["handlers"]), filters=list(state["filters"]))
            logger.parent = parent
            logger._cache = {}
        logging.Logger.manager._clear_cache()


def _named_loggers() -> list[tuple[str, logging.Logger]]:
    return [
        (name, item)
        for name, item in list(logging.Logger.manager.loggerDict.items())
        if isinstance(item, logging.Logger)
    ]


def _stream_handlers() -> Iterator[tuple[str, logging.StreamHandler]]:
    loggers = [logging.getLogger()]
    loggers += [
        item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                yield logger.name, handler


def _set_stream(handler: logging.StreamHandler, stream: TextIO) -> None:
    """``handler.setStream`` without flushing the old stream (it may be closed: a test runner's capture)."""
    handler.acquire()
    try:
        handler.stream = stream
    finally:
        handler.release()


def _within(name: str, roots: set[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)
