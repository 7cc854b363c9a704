"""Security rules that hold for the whole repository (docs/reliability.md, "Security")."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import yaml

from impact_assets.assets.graph import build_definitions
from impact_assets.assets.storage import JsonIOManager
from impact_assets.config import load_config
from tests.support import write_manifest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "impact_assets"
#: Where a person or a script reads commands: docs, README, scripts, CI, the deploy example.
COMMAND_FILES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "scripts").glob("*")),
    ROOT / ".ci" / "run",
    *sorted((ROOT / "deploy").glob("*")),
]
WEBSERVER = re.compile(r"(dagster dev|dagster-webserver|dagster_webserver)\b(?!`)")


def python_sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "scripts").glob("*.py"))


def test_yaml_is_only_read_with_safe_load():
    unsafe = re.compile(
        r"yaml\.(load|unsafe_load|full_load|load_all)\(|Loader=yaml\.(Full|Unsafe)?Loader"
    )
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in python_sources()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if unsafe.search(line)
    ]
    assert offenders == []


def test_no_pickle_in_the_package():
    pattern = re.compile(
        r"\b(import (c)?pickle|from (c)?pickle|cloudpickle|dill|joblib|read_pickle|to_pickle)\b"
    )
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in python_sources()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_stored_assets_are_json_only(tmp_path):
    defs = build_definitions(load_config(write_manifest(tmp_path / "project")))
    managers = {
        key: type(resource).__name__
        for key, resource in defs.resources.items()
        if key.endswith("io_manager")
    }
    assert managers == {"io_manager": JsonIOManager.__name__}
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def("impact_pipeline").execute_in_process(instance=instance).success
        storage = Path(instance.storage_directory()) / "impact_assets"
        files = [p for p in storage.rglob("*") if p.is_file()]
        assert files
        for path in files:
            assert path.suffix in (".json", ".png", ".parquet", ".csv"), path
            assert not path.read_bytes().startswith((b"\x80\x03", b"\x80\x04", b"\x80\x05")), path


def test_every_webserver_command_binds_127_0_0_1():
    """Every command line that starts the UI names ``-h 127.0.0.1``; nothing binds 0.0.0.0."""
    commands = []
    for path in COMMAND_FILES:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        assert "0.0.0.0" not in text, path
        for n, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            looks_like_a_command = stripped.startswith(
                ("dagster", ".venv/bin/dagster", "DAGSTER_HOME=", "python -m dagster")
            ) or re.search(r"\$ |^\s*(sudo )?\S*dagster(-webserver)? ", line)
            if WEBSERVER.search(line) and looks_like_a_command and "-h" in line:
                commands.append((path, n, line))
                assert "-h 127.0.0.1" in line, f"{path}:{n}: {line}"
            elif WEBSERVER.search(line) and looks_like_a_command:
                assert "127.0.0.1" in line, f"{path}:{n}: {line}"
    assert commands, "no webserver command found: the check looked in the wrong places"


def test_every_script_and_test_that_starts_the_webserver_binds_127_0_0_1():
    launch = re.compile(r'/ "dagster-webserver"|"dagster_webserver"')
    bound = re.compile(r'"-h",\s*"127\.0\.0\.1"')
    launchers = []
    for path in [*sorted((ROOT / "scripts").glob("*.py")), *sorted((ROOT / "tests").rglob("*.py"))]:
        text = path.read_text(encoding="utf-8")
        if path == Path(__file__).resolve():
            continue
        if launch.search(text):
            launchers.append(path)
            assert len(bound.findall(text)) >= len(launch.findall(text)), path
            assert "0.0.0.0" not in text, path
    assert launchers


def test_no_secret_in_any_config():
    """A ``password`` is only ever taken from the environment (``{env: ...}``)."""
    configs = [
        *sorted((ROOT / "configs").rglob("*.yaml")),
        *sorted((ROOT / "deploy").rglob("*.yaml")),
        ROOT / "workspace.yaml",
    ]
    found = 0

    def walk(value, where):
        nonlocal found
        if isinstance(value, dict):
            for key, item in value.items():
                if re.search(r"pass(word)?|secret|token", str(key), re.IGNORECASE):
                    found += 1
                    assert isinstance(item, dict) and set(item) == {"env"}, f"{where}.{key}"
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for item in value:
                walk(item, where)

    for path in configs:
        walk(yaml.safe_load(path.read_text(encoding="utf-8")), str(path.relative_to(ROOT)))
    assert found >= 1  # deploy/dagster.yaml's PostgreSQL password, through env
