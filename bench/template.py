"""Read what the benchmarks need from ``template.yaml`` (parsed as the local stack parses it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.procs import ROOT, BenchError
from p1_retrain.local.errors import LocalStackError
from p1_retrain.local.template import load_template

TEMPLATE = ROOT / "template.yaml"


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    if not path.exists():
        raise BenchError(f"{path.name} not found")
    try:
        return load_template(path)
    except LocalStackError as exc:
        raise BenchError(str(exc)) from exc


def _resolve(template: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and "Ref" in value:
        parameter = template.get("Parameters", {}).get(value["Ref"], {})
        return parameter.get("Default")
    return value


def function_memory_mb(code_dir: str, template: dict[str, Any] | None = None) -> int:
    """``MemorySize`` of the function with ``CodeUri: functions/<code_dir>`` (else Globals, else 128)."""
    template = template or load()
    default = _resolve(template, template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        if str(properties.get("CodeUri", "")).rstrip("/").endswith(f"functions/{code_dir}"):
            return int(_resolve(template, properties.get("MemorySize", default)))
    raise BenchError(f"template.yaml has no function with CodeUri functions/{code_dir}")


def function_architecture(code_dir: str, template: dict[str, Any] | None = None) -> str:
    template = template or load()
    default = template.get("Globals", {}).get("Function", {}).get("Architectures", ["x86_64"])
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if str(properties.get("CodeUri", "")).rstrip("/").endswith(f"functions/{code_dir}"):
            return str(properties.get("Architectures", default)[0])
    raise BenchError(f"template.yaml has no function with CodeUri functions/{code_dir}")
