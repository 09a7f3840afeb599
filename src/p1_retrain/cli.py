"""The ``p1-retrain`` command.

``emulator`` serves the Prediction One emulator; ``demo`` runs the whole pipeline on the local stack;
``keys`` sets, lists and removes the API keys in a deployed stack's secret; ``serve`` keeps the local
stack running for any AWS client.
"""

from __future__ import annotations

import argparse
import sys

from p1_retrain.emulator.cli import port_number, seconds, usage_problem


def _model_pair(text: str) -> tuple[str, str]:
    name, sep, key = text.partition("=")
    if not sep or not name or not key:
        raise argparse.ArgumentTypeError(f"expected NAME=KEY, got {text!r}")
    return name, key


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="p1-retrain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    emu = sub.add_parser("emulator", help="serve the Prediction One emulator over HTTP")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=port_number, default=8000)
    emu.add_argument(
        "--model",
        action="append",
        type=_model_pair,
        default=[],
        metavar="NAME=KEY",
        help="a model and its API key (repeatable; default: demo=demo-key)",
    )
    emu.add_argument("--job-seconds", type=seconds, default=30.0, help="how long a retrain job runs")

    demo = sub.add_parser("demo", help="run the whole pipeline locally (moto + emulator + real handlers)")
    demo.add_argument("files", nargs="*", metavar="FILE", help="CSV, TSV or zip files to drop")
    demo.add_argument("--model", default="demo", help="model folder to drop the files into")
    demo.add_argument("--eval", metavar="FILE", help="evaluation CSV: FILE(s) become train+eval zips")
    demo.add_argument(
        "--train-eval",
        nargs=2,
        metavar=("TRAIN", "EVAL"),
        action="append",
        default=[],
        help="drop a train+eval zip built from these two CSVs (repeatable)",
    )
    demo.add_argument("--count", type=int, default=0, help="generate N synthetic files")
    demo.add_argument("--models", type=int, default=3, help="spread --count files over this many models")
    demo.add_argument("--switch", action="store_true", help="switch the model after each retrain")
    demo.add_argument("--job-seconds", type=float, default=2.0, help="how long emulated jobs run")
    demo.add_argument("--fault-rate", type=float, default=0.0, help="emulator fault injection rate (0..1)")
    demo.add_argument("--fault-seed", type=int, default=1234)
    demo.add_argument("--train-watch", action="store_true", help="also watch an emulated training run")
    demo.add_argument("--output", default="demo-output", help="folder for archived results")
    demo.add_argument("--json", action="store_true", help="end with the JSON summary on the last line")

    serve = sub.add_parser("serve", help="keep the local stack running until SIGINT/SIGTERM")
    serve.add_argument(
        "--port", type=int, default=0, help="loopback port of the AWS endpoint (0: a free one)"
    )
    serve.add_argument(
        "--model",
        action="append",
        type=_model_pair,
        default=[],
        metavar="NAME=KEY",
        help="a model and its API key (repeatable; default: demo with an emulator key)",
    )
    serve.add_argument(
        "--api-base-url", help="a Prediction One API base URL instead of the embedded emulator"
    )
    serve.add_argument("--job-seconds", type=float, default=2.0, help="how long emulated jobs run")
    serve.add_argument("--fault-rate", type=float, default=0.0, help="emulator fault injection rate (0..1)")

    from p1_retrain.keys import add_parser as add_keys_parser

    add_keys_parser(sub)
    return parser


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise LookupError(name)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    command = _subcommand(parser, args.command)
    if unknown:
        # The subcommand's usage, not the top-level one: the option belongs to the subcommand's line.
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "emulator" and (problem := usage_problem(args)):
        command.error(problem)
    if args.command == "emulator":
        from p1_retrain.emulator.cli import run as run_emulator

        return run_emulator(args)
    if args.command == "keys":
        from p1_retrain.keys import run as run_keys

        return run_keys(args)
    if args.command == "serve":
        from p1_retrain.local.serve import run as run_serve

        return run_serve(args)
    from p1_retrain.local.demo import run as run_demo

    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
