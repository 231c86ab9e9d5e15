"""surgedesk: a dispatch engine for IM customer service.

One import name for the whole distribution. Its parts are the repository's top-level folders,
mapped into this package by the links beside this file:

* :mod:`surgedesk.engine` -- the functional core (routing, life cycle, estimates), pure;
* :mod:`surgedesk.adapters` -- the shells around it: gRPC, Redis, Ray, metrics, identity;
* :mod:`surgedesk.benchmarks` -- scenarios, the virtual-time simulator, surge load tests;
* :mod:`surgedesk.v1` -- the code generated from the public contract (``protos/surgedesk/v1``);
* :mod:`surgedesk.cli` -- the ``surgedesk`` command, the one place that sees all of them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("surgedesk")
except PackageNotFoundError:  # a source tree used without installing it
    __version__ = "0.0.0+unknown"
