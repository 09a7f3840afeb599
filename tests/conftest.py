"""Fixtures shared by every test folder."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"


def load_function(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` under a unique module name (every handler is called ``app``)."""
    module_name = f"functions_{name}_app"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, FUNCTIONS / name / "app.py")
    assert spec and spec.loader, name
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_app():
    """``load_app("upload")`` returns the module of ``functions/upload/app.py``."""
    return load_function


@pytest.fixture
def emulator():
    """A running emulator on an ephemeral loopback port, model ``demo`` with key ``demo-key``."""
    from p1_retrain.emulator import EmulatorServer

    with EmulatorServer(port=0, job_seconds=0.5) as server:
        yield server
