"""The library internals the engine relies on are still where and what it expects.

The engine's Redis client (``adapters/redis/client.py``) parses replies with redis-py's private
error parser and passes redis-py's private option names through its response callbacks; the
generated protobuf code checks its runtime at import. pyproject.toml bounds both libraries
from above; these tests fail loudly, naming what moved, when a release inside the bounds (or a
widened bound) changes them.
"""

from __future__ import annotations

import inspect
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def declared(name: str) -> Requirement:
    for line in metadata.requires("surgedesk") or []:
        requirement = Requirement(line)
        if requirement.name == name and requirement.marker is None:
            return requirement
    raise AssertionError(f"surgedesk does not declare {name}")


@pytest.mark.parametrize("name", ["redis", "protobuf", "grpcio"])
def test_the_installed_version_is_inside_the_declared_bounds(name):
    assert declared(name).specifier.contains(metadata.version(name), prereleases=True), (
        f"{name} {metadata.version(name)} is outside {declared(name).specifier}")


def test_redis_py_private_parser_still_turns_error_replies_into_typed_errors():
    from redis import exceptions
    from redis._parsers.base import BaseParser

    assert isinstance(BaseParser.parse_error("WRONGTYPE Operation against a key"),
                      exceptions.ResponseError)
    assert isinstance(BaseParser.parse_error("NOSCRIPT No matching script"),
                      exceptions.NoScriptError)
    assert isinstance(BaseParser.parse_error("ERR unknown command"), exceptions.ResponseError)


def test_redis_py_private_options_still_mean_what_the_engine_passes_on():
    import redis.asyncio.client as aioclient
    from redis.client import EMPTY_RESPONSE, NEVER_DECODE
    from redis.commands import AsyncCoreCommands
    from redis.utils import DEFAULT_RESP_VERSION

    # The engine's client answers like redis-py's parse_response: an option EMPTY_RESPONSE is
    # the value of an empty reply, NEVER_DECODE is dropped before the callback.
    source = inspect.getsource(aioclient.Redis.parse_response)
    assert "EMPTY_RESPONSE" in source and "NEVER_DECODE" in source
    assert isinstance(EMPTY_RESPONSE, str) and isinstance(NEVER_DECODE, str)
    assert DEFAULT_RESP_VERSION in (2, 3)
    for command in ("xadd", "xrange", "evalsha", "get", "set", "incr"):
        assert callable(getattr(AsyncCoreCommands, command)), command
    assert "response_callbacks" in vars(aioclient.Redis(single_connection_client=False))


def test_the_generated_code_matches_the_protobuf_runtime():
    from google.protobuf import runtime_version

    gencode = (ROOT / "protos" / "surgedesk" / "v1" / "common_pb2.py").read_text()
    major, minor, patch = map(int, re.search(
        r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),"
        r"\s*(\d+),", gencode).groups())
    assert major == runtime_version.MAJOR, "generated code and runtime differ in major version"
    requirement = declared("protobuf").specifier
    assert requirement.contains(f"{major}.{minor}.{patch}")
    assert not requirement.contains(f"{major + 1}.0.0"), "a new major breaks the generated code"
    import surgedesk.v1.common_pb2  # noqa: F401  (its import runs the runtime check)
