"""Security rules that hold for the whole repository (docs/reliability.md, "Security")."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

from impact_assets.assets.code_location import build_definitions
from impact_assets.assets.storage import JsonIOManager
from impact_assets.config import load_config
from impact_assets.yaml_safe import safe_load_text
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


#: The one module allowed to call ``yaml.load``, and the one call it may make: libyaml's
#: ``CSafeLoader`` (SafeLoader's constructor on the C parser) or ``SafeLoader`` itself.
YAML_SAFE = PACKAGE / "yaml_safe.py"
SAFE_LOAD_CALL = 'return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))'
UNSAFE_YAML = re.compile(
    r"yaml\.(load|unsafe_load|full_load|load_all|unsafe_load_all|full_load_all)\("
    r"|Loader\s*=\s*(yaml\.)?C?(Full|Unsafe)?Loader\b"
    r"|from\s+yaml\s+import\b.*\b(load|load_all|unsafe_load|full_load|C?(Full|Unsafe)?Loader)\b"
)


def test_yaml_is_only_read_with_safe_load():
    """No unsafe YAML load anywhere; ``yaml.load`` only in ``yaml_safe.py``, with a safe loader."""
    offenders, allowed = [], []
    for path in python_sources():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not UNSAFE_YAML.search(line):
                continue
            code = line.split("#", 1)[0].strip()  # the call itself, without its noqa comment
            if path == YAML_SAFE and code == SAFE_LOAD_CALL:
                allowed.append(f"{path.relative_to(ROOT)}:{n}")
            else:
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []
    assert len(allowed) == 1, allowed


def test_the_yaml_check_catches_unsafe_loads():
    for line in (
        "yaml.load(text)",
        "yaml.load(text, Loader=yaml.Loader)",
        "yaml.load(text, Loader=yaml.CLoader)",
        "yaml.load(text, Loader=yaml.FullLoader)",
        "yaml.load(text, Loader=yaml.CUnsafeLoader)",
        "yaml.unsafe_load(text)",
        "yaml.full_load(text)",
        "yaml.load_all(text)",
        "yaml.unsafe_load_all(text)",
        "from yaml import load",
        "from yaml import CLoader as Loader",
        "from yaml import UnsafeLoader",
        "yaml.load(text, Loader=yaml.SafeLoader)",  # allowed only as yaml_safe.py's one call
    ):
        assert UNSAFE_YAML.search(line), line
    for line in ("yaml.safe_load(text)", "yaml.safe_dump(data)", "safe_load_text(text)"):
        assert not UNSAFE_YAML.search(line), line


def test_package_parses_yaml_only_through_safe_load_text():
    direct = re.compile(r"yaml\.safe_load(_all)?\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in python_sources()
        if path != YAML_SAFE
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if direct.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "text",
    [
        '!!python/object/apply:os.system ["echo hi"]',
        "!!python/name:os.system",
        'run: !!python/object/apply:os.system ["echo hi"]',
        "call: !!python/name:os.system",
        "!!python/object/new:os.system [echo hi]",
    ],
)
def test_safe_load_text_refuses_python_tags(text):
    with pytest.raises(yaml.constructor.ConstructorError):
        safe_load_text(text)


def _repo_yaml_files() -> list[Path]:
    files = sorted((ROOT / "configs").rglob("*.y*ml"))
    loop = ROOT.parent / "shared" / "reference" / "impact-loop"
    if loop.is_dir():
        files += sorted(loop.rglob("*.y*ml"))
    return files


def test_safe_load_text_gives_what_safe_load_gives_on_the_repo_yaml():
    files = _repo_yaml_files()
    assert len(files) >= 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert safe_load_text(text) == yaml.safe_load(text), path


def test_safe_load_text_errors_are_safe_load_errors():
    """Syntax errors keep PyYAML's messages and marks (file line numbers in ConfigError)."""
    for text in ("budget: [1, 2\nx: 3\n", "a: b: c\n", "x: @bad\n", "{a: 1"):
        with pytest.raises(yaml.MarkedYAMLError) as expected:
            yaml.safe_load(text)
        with pytest.raises(yaml.MarkedYAMLError) as got:
            safe_load_text(text)
        assert str(got.value) == str(expected.value)


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
