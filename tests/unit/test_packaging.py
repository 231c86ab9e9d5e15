"""The distribution: one import name, the engine's needs apart from the benchmarks', and the
files a shipped scenario needs inside the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel ``pip install .`` would install, built from this tree (no build isolation:
    the test extras bring the build backend)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(out), str(ROOT)], check=True,
                   cwd=tmp_path_factory.mktemp("elsewhere"))
    (built,) = out.glob("surgedesk-*.whl")
    return built


def _dist_info(names: list[str], leaf: str) -> str:
    (path,) = [n for n in names if n.endswith(f".dist-info/{leaf}")]
    return path


def test_the_wheel_installs_one_top_level_name(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top_level = zf.read(_dist_info(names, "top_level.txt")).decode().split()
        record = zf.read(_dist_info(names, "RECORD")).decode().splitlines()
    assert top_level == ["surgedesk"]
    tops = {line.split(",", 1)[0].split("/", 1)[0] for line in record}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"surgedesk"}
    for module in ("surgedesk/engine/dispatcher.py", "surgedesk/adapters/serve.py",
                   "surgedesk/benchmarks/simulator.py", "surgedesk/v1/customer_pb2.py",
                   "surgedesk/cli.py", "surgedesk/py.typed"):
        assert module in names, module


def test_the_wheel_carries_the_desk_the_scenarios_the_bank_log_and_the_license(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert "surgedesk/adapters/sample_desk.toml" in names
    assert "surgedesk/benchmarks/scenarios/bank-aug.toml" in names
    assert "surgedesk/benchmarks/data/anonymous_bank_aug_1-15.csv" in names
    assert "surgedesk/benchmarks/data/README.md" in names
    assert "surgedesk/v1/service_config.json" in names  # the published retry policy
    assert "surgedesk/v1/customer.proto" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_the_benchmark_libraries_are_an_extra_and_the_private_apis_have_upper_bounds(wheel):
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(_dist_info(zf.namelist(), "METADATA")).decode()
    assert "License-Expression: Apache-2.0" in metadata
    requirements = [Requirement(line.split(":", 1)[1].strip())
                    for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    runtime = {r.name: r for r in requirements if r.marker is None}
    bench = {r.name for r in requirements if r.marker and 'extra == "bench"' in str(r.marker)}
    assert {"matplotlib", "rich"} <= bench
    assert not {"matplotlib", "rich"} & set(runtime)
    for name, first_excluded in (("redis", "9"), ("protobuf", "8")):
        assert not runtime[name].specifier.contains(first_excluded), (
            f"{name} needs an upper bound: the engine relies on its internals")


def test_the_installed_wheel_imports_and_finds_its_files_from_anywhere(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)], check=True)
    # What serve and the benchmarks read from the package itself: the sample desk and a
    # shipped scenario with the log it replays -- found through the one name only, as no
    # folder of this repository is on the path there.
    code = ("import surgedesk, surgedesk.engine, surgedesk.adapters, surgedesk.v1.customer_pb2\n"
            "from importlib import resources\n"
            "from surgedesk.adapters.serve import load_config\n"
            "from surgedesk.benchmarks.scenario import load_scenario\n"
            "assert load_config(None).agents\n"
            "with resources.as_file(resources.files('surgedesk.benchmarks') / 'scenarios'"
            " / 'bank-aug.toml') as path:\n"
            "    assert load_scenario(path).trace.path.is_file()\n"
            "print(surgedesk.__file__); print(load_config.__code__.co_filename)")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(target) for p in out), out


def test_serving_needs_none_of_the_benchmark_libraries():
    code = ("import sys; import surgedesk.cli, surgedesk.adapters.serve; "
            "print(sorted(m for m in ('matplotlib', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_a_benchmark_command_without_the_extras_says_what_to_install(monkeypatch, capsys):
    from surgedesk import cli
    from surgedesk.benchmarks.extras import MissingExtras

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    scenario = str(ROOT / "benchmarks" / "scenarios" / "big-sale.toml")
    with pytest.raises(MissingExtras) as info:
        cli.main(["simulate", scenario, "--json", "unused.json"])
    message = str(info.value)
    assert "matplotlib" in message and 'pip install "surgedesk[bench]"' in message
    assert "surgedesk simulate" in message
    assert info.value.code == message  # SystemExit prints it and exits with status 1
