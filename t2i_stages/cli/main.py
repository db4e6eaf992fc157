"""The `t2i-stages` command line: a thin layer over the Python API.

Each command lives in its own module under ``t2i_stages.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (taking the parsed args and
returning an exit code). User errors (``T2IError``) print one line and exit 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from typing import NoReturn

from ..errors import T2IError

# Modules under t2i_stages.cli that each add one or more commands.
COMMAND_MODULES = (
    "run",
    "validate",
    "plugins",
    "schema",
    "summary",
    "data",
    "export",
    "generate",
    "serve",
    "eval",
    "ablate",
    "new_plugin",
    "import_release",
    "env",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other user error
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="t2i-stages",
        description="Train, evaluate and export stage-wise text-to-image GANs from YAML recipes.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"t2i_stages.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except T2IError as exc:
        if args.debug:
            traceback.print_exc()
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `t2i-stages plugins | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit's flush does not raise again
        return 141  # 128 + SIGPIPE, as a shell reports a pipe's early reader


def entry(argv: list[str] | None = None) -> NoReturn:
    """The console script and ``python -m t2i_stages.cli.main``: run ``main`` and exit.

    A torchrun worker (``WORLD_SIZE`` > 1) leaves through ``os._exit`` once its output is
    flushed. DDP leaves the gloo process group referenced from C++ after
    ``destroy_process_group``, so the interpreter's teardown would destroy it and its worker
    threads while Python is half gone, which now and then aborts a finished run (SIGABRT,
    "terminate called without an active exception") and fails it under torchrun.
    """
    code = main(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed or broken pipe: nothing left to say
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
