"""Give every in-process function the environment its template declares, even when they run at once.

Handlers run concurrently in Step Functions' execution threads, and code reads ``os.environ`` at any
time (Powertools at import, settings at call time). So: variables on which all functions agree are set
once in the process environment for the stack's lifetime; variables that differ between functions (or
exist only for some) are served per thread by an ``os.environ`` overlay while that function runs. The
overlay is only installed when some variable differs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_UNSET = None


class _OverlayEnviron(os._Environ):  # type: ignore[name-defined,misc]
    """``os.environ`` whose reads first consult the current thread's overlay (``None`` = unset)."""

    def __init__(self, base: os._Environ) -> None:  # type: ignore[name-defined]
        super().__init__(base._data, base.encodekey, base.decodekey, base.encodevalue, base.decodevalue)
        self.base = base
        self._local = threading.local()

    def overlay(self) -> dict[str, str | None]:
        return getattr(self._local, "values", None) or {}

    def set_overlay(self, values: dict[str, str | None] | None) -> None:
        self._local.values = values

    def __getitem__(self, key: str) -> str:
        overlay = self.overlay()
        if key in overlay:
            value = overlay[key]
            if value is _UNSET:
                raise KeyError(key)
            return value
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[str]:
        overlay = self.overlay()
        yield from (key for key, value in overlay.items() if value is not _UNSET)
        yield from (key for key in super().__iter__() if key not in overlay)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)


class FunctionEnvironments:
    """The environments of the deployed functions, applied to the running process."""

    def __init__(self, environments: Mapping[str, Mapping[str, str]]) -> None:
        self._environments = {name: dict(env) for name, env in environments.items()}
        keys = set().union(*(env.keys() for env in self._environments.values())) if environments else set()
        self.shared: dict[str, str] = {}
        self.per_function: dict[str, dict[str, str | None]] = {name: {} for name in self._environments}
        for key in sorted(keys):
            values = {env.get(key) for env in self._environments.values()}
            if len(values) == 1 and _UNSET not in values:
                self.shared[key] = values.pop()
            else:
                for name, env in self._environments.items():
                    self.per_function[name][key] = env.get(key)
        self._saved: dict[str, str | None] = {}
        self._overlay: _OverlayEnviron | None = None

    @property
    def differing(self) -> list[str]:
        """Variables served per function (empty when all functions agree)."""
        return sorted({key for env in self.per_function.values() for key in env})

    def install(self) -> None:
        self._saved = {key: os.environ.get(key) for key in self.shared}
        os.environ.update(self.shared)
        if self.differing:
            self._overlay = _OverlayEnviron(os.environ)
            os.environ = self._overlay  # noqa: B003 - replaced on purpose, restored by uninstall()

    def uninstall(self) -> None:
        if self._overlay is not None:
            os.environ = self._overlay.base  # noqa: B003 - the original mapping again
            self._overlay = None
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved = {}

    @contextmanager
    def applied(self, function: str) -> Iterator[None]:
        """Serve ``function``'s own values to the current thread."""
        if self._overlay is None:
            yield
            return
        previous = self._overlay.overlay()
        self._overlay.set_overlay(self.per_function.get(function, {}))
        try:
            yield
        finally:
            self._overlay.set_overlay(previous)
