"""The repository stands on its own: nothing in it names a place outside it, every document a
file cites is one of its files, and the data its shipped scenarios replay ships with it."""

from __future__ import annotations

import re
import subprocess
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".json", ".proto", ".txt", ".cfg", ".ini",
                 ".pyi", ""}
# (written so that this file does not match what it looks for: [/] is a slash)
OUTSIDE = re.compile(r"\.\.[/]shared|(?<![\w-])shared[/](data|DESIGN|API|BENCHMARKS|STYLE)")
RELATIVE_PATH = re.compile(r"(?<![\w.])((?:\.\./)+[\w.-][\w./-]*)")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
CITED_DOCUMENT = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[A-Z][A-Za-z_-]*\.md)\b")


def tracked_files() -> list[Path]:
    """The files of the repository: git's list in a checkout, else every file below the root
    (an unpacked source tree), less the folders tools make."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "build", "dist", "__pycache__", ".mypy_cache", ".ruff_cache",
                ".pytest_cache", ".hypothesis"}
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    return [ROOT / n for n in names if not (ROOT / n).is_symlink()]


def text_files() -> list[Path]:
    out = []
    for path in tracked_files():
        if path.suffix in TEXT_SUFFIXES and path.is_file() and path.stat().st_size < 2_000_000:
            try:
                path.read_text()
            except UnicodeDecodeError:
                continue
            out.append(path)
    return out


def inside(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT)


def test_no_file_names_a_place_outside_the_repository():
    found = []
    for path in text_files():
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{number}"
            if OUTSIDE.search(line):
                found.append(f"{where}: {line.strip()}")
            for rel in RELATIVE_PATH.findall(line):
                if not inside(path.parent / rel):
                    found.append(f"{where}: {rel} leads out of the repository")
    assert not found, "\n".join(found)


def test_every_markdown_link_to_a_file_points_at_a_file_of_the_repository():
    broken = []
    for path in text_files():
        if path.suffix != ".md":
            continue
        for target in MARKDOWN_LINK.findall(path.read_text()):
            if re.match(r"[a-z]+:", target):  # http:, mailto: ...
                continue
            resolved = path.parent / target
            if not (inside(resolved) and resolved.exists()):
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, "\n".join(broken)


def test_every_document_a_file_cites_is_a_file_of_the_repository():
    # A cited document is named by its path from the repository's root or from the citing
    # file's folder (a README.md beside a module).
    names = {p.relative_to(ROOT).as_posix() for p in tracked_files()}
    missing = []
    for path in text_files():
        for cited in set(CITED_DOCUMENT.findall(path.read_text())):
            candidates = (ROOT / cited, path.parent / cited)
            if not (cited in names or any(inside(c) and c.exists() for c in candidates)):
                missing.append(f"{path.relative_to(ROOT)} cites {cited}")
    assert not missing, "\n".join(missing)
    for document in ("docs/DESIGN.md", "docs/API.md", "docs/FORMATS.md", "BENCHMARKS.md",
                     "LICENSE", "benchmarks/data/README.md"):
        assert document in names, f"{document} is not part of the repository"


def test_the_bank_log_and_the_scenarios_that_replay_it_ship_in_the_package():
    from surgedesk.benchmarks.population import build_population
    from surgedesk.benchmarks.scenario import load_scenario

    package = resources.files("surgedesk.benchmarks")
    log = package / "data" / "anonymous_bank_aug_1-15.csv"
    assert log.is_file() and (package / "data" / "README.md").is_file()
    assert "Mandelbaum" in (package / "data" / "README.md").read_text()
    with resources.as_file(package / "scenarios" / "bank-aug.toml") as path:
        scenario = load_scenario(path)
    assert scenario.trace is not None and scenario.trace.path.resolve() == Path(str(log)).resolve()
    assert len(build_population(scenario).customers) > 20_000


@pytest.mark.parametrize("old", ["engine", "adapters", "benchmarks"])
def test_no_module_imports_a_folder_by_its_own_name(old):
    # Everything is imported through the one name, so that an installed wheel and this tree
    # run the same modules (ruff's banned-api says the same to a developer).
    pattern = re.compile(rf"^\s*(from|import) {old}(\.|\s|$)", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in text_files()
                 if p.suffix == ".py" and pattern.search(p.read_text())]
    assert not offenders
