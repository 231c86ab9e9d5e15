"""The benchmark extras: what the benchmark commands need beyond the engine.

``pip install surgedesk`` installs the engine; plots (matplotlib) and progress bars (rich) come
with ``pip install "surgedesk[bench]"``. A benchmark command calls :func:`require` first, so
that without them it stops with one line naming what to install, not a traceback from deep
inside a report.
"""

from __future__ import annotations

from importlib.util import find_spec

#: import name -> the distribution that provides it (all in the ``bench`` extra)
BENCH_MODULES = {"matplotlib": "matplotlib", "rich": "rich"}


class MissingExtras(SystemExit):
    """A benchmark command was asked for without the benchmark extras installed."""


def missing() -> list[str]:
    """The distributions of the ``bench`` extra that are not installed. O(modules)."""
    return [dist for module, dist in BENCH_MODULES.items() if find_spec(module) is None]


def require(command: str) -> None:
    """Stop the process (:class:`MissingExtras`, exit status 1, with a message) unless the
    benchmark extras are installed."""
    absent = missing()
    if absent:
        raise MissingExtras(
            f"{command} needs the benchmark extras, which are not installed "
            f"({', '.join(absent)}): pip install \"surgedesk[bench]\"")
