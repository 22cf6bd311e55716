"""Reproducible installs: the hash locks cover every pinned requirement at its version, the venv targets and
the image install from them with --require-hashes and a CPU-only torch, compose runs images by digest, and
the project carries its licence (docs/deploy.md, "Installing: reproducible and CPU-only")."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {"requirements.txt": "requirements.lock", "requirements-dev.txt": "requirements-dev.lock"}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;#\\]+)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]+)")
# The PyTorch CPU index's SHA-256 of the torch 2.13.0+cpu wheels for CPython 3.11 on Linux (docs/deploy.md):
# the image's platforms. This machine's local wheel is the x86_64 one.
TORCH_CPU_LINUX_CP311 = {
    "6746dbcbeb526eb61330b76b41ff1b4eb848951103a892eeb080dfa2b264667b",  # manylinux_2_28_x86_64
    "84453b69508ec79902f899c5ed9495acb9e2bbe9fda5f1d5d6f19e3c3842e1a7",  # manylinux_2_28_aarch64
}


@dataclass
class Entry:
    version: str
    hashes: set[str] = field(default_factory=set)


def lock_entries(path: Path) -> dict[str, Entry]:
    """{canonical name: pin and hashes} of a pip-compile lock: a pin line, then its indented --hash lines."""
    entries: dict[str, Entry] = {}
    current: Entry | None = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            assert current is not None, f"{path.name}: a continuation line before any pin: {line!r}"
            current.hashes.update(HASH.findall(line))
            continue
        found = PIN.match(line)
        assert found, f"{path.name}: not an exact pin: {line!r}"
        name = canonicalize_name(found["name"])
        assert name not in entries, f"{path.name}: {name} pinned twice"
        current = entries[name] = Entry(found["version"])
        current.hashes.update(HASH.findall(line))
    return entries


def requirements(path: Path) -> dict[str, str]:
    """{canonical name: pinned version} of a requirements file, following its ``-r`` includes."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            pins.update(requirements(path.parent / line[3:].strip()))
            continue
        found = PIN.match(line)
        assert found, f"{path.name}: every requirement is pinned with ==: {line!r}"
        pins[canonicalize_name(found["name"])] = found["version"]
    return pins


@pytest.mark.parametrize(("source", "lock"), LOCKS.items())
def test_every_lock_entry_is_an_exact_pin_with_sha256_hashes(source, lock):
    entries = lock_entries(ROOT / lock)

    assert len(entries) > len(requirements(ROOT / source))  # the dependencies of the dependencies too
    for name, entry in entries.items():
        assert entry.hashes, f"{lock}: {name} has no --hash"
        assert all(len(digest) == 64 for digest in entry.hashes), name


@pytest.mark.parametrize(("source", "lock"), LOCKS.items())
def test_every_requirement_is_locked_at_its_pinned_version(source, lock):
    entries = lock_entries(ROOT / lock)

    for name, version in requirements(ROOT / source).items():
        assert name in entries, f"{name} is in {source} but not in {lock}: run `make lock`"
        # == without a local label matches one (torch==2.13.0 is the lock's 2.13.0+cpu), as pip reads it.
        assert SpecifierSet(f"=={version}").contains(entries[name].version, prereleases=True), (
            f"{source} pins {name}=={version}, {lock} has {entries[name].version}: run `make lock`"
        )


def test_the_dev_lock_installs_the_runtime_lock_unchanged():
    runtime = lock_entries(ROOT / "requirements.lock")
    dev = lock_entries(ROOT / "requirements-dev.lock")

    for name, entry in runtime.items():
        assert name in dev, name
        assert (dev[name].version, dev[name].hashes) == (entry.version, entry.hashes), name


@pytest.mark.parametrize("lock", LOCKS.values())
def test_the_locks_pin_cpu_only_torch_with_the_cpu_index_hashes(lock):
    entries = lock_entries(ROOT / lock)

    assert entries["torch"].version.endswith("+cpu")
    assert entries["torch"].hashes >= TORCH_CPU_LINUX_CP311
    gpu = sorted(name for name in entries if name.startswith(("nvidia-", "triton", "cuda-")))
    assert gpu == []


def test_the_venv_targets_and_the_image_install_the_locks_with_require_hashes():
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    script = (ROOT / "tools" / "install-locked.sh").read_text()

    # make run / make test reinstall when a lock changes, and only through the hash-checking script.
    assert re.search(r"^\$\(VENV\)/\.runtime: requirements\.lock\b", makefile, re.M)
    assert re.search(r"^\$\(VENV\)/\.dev: requirements-dev\.lock\b", makefile, re.M)
    assert "tools/install-locked.sh requirements.lock" in makefile
    assert "tools/install-locked.sh requirements-dev.lock" in makefile
    assert not re.search(r"pip install.*requirements(-dev)?\.txt", makefile)
    assert "install-locked.sh /tmp/requirements.lock" in dockerfile
    # Every pip install in the script checks hashes; torch alone may see the CPU index.
    installs = [line for line in script.splitlines() if "pip install" in line]
    assert len(installs) == 3
    assert all("--require-hashes" in line for line in installs)
    assert 'PIP_EXTRA_INDEX_URL="$torch_index"' in script
    assert "https://download.pytorch.org/whl/cpu" in script
    assert 'startswith(("nvidia", "triton"))' in script


def test_every_compose_image_is_pinned_by_tag_and_digest():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    pulled = {name: service["image"] for name, service in services.items() if "build" not in service}

    assert {"db", "redis", "prometheus", "grafana"} <= set(pulled)
    for name, image in pulled.items():
        assert re.fullmatch(r"[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}", image), f"{name}: {image}"


def test_the_licence_is_apache_2_and_referenced():
    licence = (ROOT / "LICENSE").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    readme = (ROOT / "README.md").read_text()

    assert licence.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert "[Apache License 2.0](LICENSE)" in readme
