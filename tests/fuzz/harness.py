"""What every fuzz target shares: instrumentation, and the libFuzzer entry point.

A target module defines ``check(data: bytes) -> None``, which runs one input through its
parser and raises only if the parser broke its contract (an exception it does not document,
or a failed round trip). The same ``check`` serves two callers:

- ``python -m tests.fuzz.fuzz_<name> [libFuzzer flags] [corpus dirs]``: the module is
  ``__main__``, its imports of our code are instrumented for coverage, and atheris drives it;
- the corpus replay test, which imports the module normally (nothing instrumented, no
  atheris state in the pytest process) and calls ``check`` on every committed input.

A target whose parsers the node runs inside ``seams.refuse_malformed_packets()`` (``rtp_packet``,
``rtcp``) runs them inside it too: its ``check`` enters the guard for one input, and its fuzz
run enters it once around ``main(check_guarded)``, as the worker does (entering it per input
would cost a few microseconds of patching for each).
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NoReturn

INSTRUMENTED_PACKAGES = ["media_fleet"]


def instrumented(module_name: str) -> AbstractContextManager[Any]:
    """Instrument the imports of our packages inside the ``with``, but only in a fuzz run.

    Only a module run as ``__main__`` is fuzzed; imported (by pytest) it must not touch the
    bytecode of modules that other tests use.
    """
    if module_name != "__main__":
        return nullcontext()
    import atheris

    return atheris.instrument_imports(include=INSTRUMENTED_PACKAGES)


def instrument_module(module: types.ModuleType, module_name: str) -> None:
    """Instrument, in place, the functions and methods a third-party module defines.

    For aiortc.rtp, whose parsers the node runs on every received packet: instrumenting
    it at import would mean instrumenting all of aiortc (the hook works per top-level
    package), which is slow to start and dilutes coverage with code no target reaches.
    """
    if module_name != "__main__":
        return
    import atheris

    for value in list(vars(module).values()):
        members = vars(value).values() if inspect.isclass(value) else [value]
        for member in members:
            function = member.__func__ if isinstance(member, classmethod | staticmethod) else member
            if inspect.isfunction(function) and function.__module__ == module.__name__:
                atheris.instrument_func(function)


def main(check: Callable[[bytes], None], argv: list[str] | None = None) -> NoReturn:
    """Fuzz ``check`` with libFuzzer's command line (``-runs``, corpus directories ...)."""
    import atheris

    atheris.Setup(sys.argv if argv is None else argv, check)
    atheris.Fuzz()
    raise SystemExit(0)  # atheris.Fuzz exits itself; this line is for the type checker
