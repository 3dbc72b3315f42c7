"""SBOMs written in the test run by the real tools, imported without ``--build-id``.

cyclonedx-py (the ``cyclonedx-bom`` package) and sbom4python, both test dependencies,
describe a small virtualenv made here: pip installs, offline from a folder of wheels
built here, ``fleet-api`` 2.4.1, which requires ``fleet-http`` and ``fleet-codec``, and
``fleet-http``, which requires ``fleet-codec``. Each tool runs twice on the same
environment (its serial number or document namespace and its timestamp differ each
time): cyclonedx-py writes JSON twice and XML, sbom4python SPDX JSON and then
tag-value; then ``fleet-codec`` is upgraded from 3.0.13 to 3.0.14 and both run again.
The SBOMs name no hash for the build, so the ledger names each build by its content
(docs/importers.md).

Neither tool needs the network for this: cyclonedx-py reads the environment's package
metadata; sbom4python reads it through ``pip show`` and also asks a web service for
more (licenses, release dates), which the proxy below refuses at once, so its output is
the same on a machine with a network and without.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import root
from ledger.application import Ledger
from ledger.store import locate

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
OFFLINE = {
    # sbom4python's lookups (requests) go to this proxy, where nothing listens.
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
    "PIP_NO_INDEX": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
}
PYPROJECT = """\
[project]
name = "api"
version = "2.4.1"
description = "The fleet's API service"
dependencies = ["fleet-api>=2"]
"""
PACKAGES = [  # name, version, what it requires
    ("fleet-api", "2.4.1", ["fleet-http>=1", "fleet-codec>=3"]),
    ("fleet-http", "1.0.0", ["fleet-codec>=3"]),
    ("fleet-codec", "3.0.13", []),
    ("fleet-codec", "3.0.14", []),
]


@dataclass(frozen=True)
class Sboms:
    """What the tools wrote, as ``<tool>-<format>-<run>``: runs 1 and 2 before the
    upgrade, 3 after it; ``cdx-bare-1`` without ``--pyproject`` (no root component)."""

    folder: Path

    def __getitem__(self, name: str) -> Path:
        return self.folder / name


def wheel(folder: Path, name: str, version: str, requires: Sequence[str]) -> None:
    """A pure-Python wheel of one module and its metadata, as any build backend writes."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f'__version__ = "{version}"\n',
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            f"Summary: {name}, a package of the test fleet\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)
        ),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test_sbom_tools\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    with zipfile.ZipFile(folder / f"{module}-{version}-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            data = text.encode()
            archive.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN))
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def run_all(commands: Sequence[Sequence[str]], cwd: Path) -> None:
    """Run the commands side by side (two cores) and check every one succeeded."""
    environment = {**os.environ, **OFFLINE, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    started = [
        subprocess.Popen(
            command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for command in commands
    ]
    for command, process in zip(commands, started, strict=True):
        output, _ = process.communicate()
        assert process.returncode == 0, f"{command}: {output.decode(errors='replace')}"


def pip_install(python: Path, wheels: Path, *requirements: str) -> None:
    run_all(
        [[sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
          "--no-index", "--find-links", str(wheels), *requirements]],
        wheels,
    )  # fmt: skip


def cyclonedx_py(python: Path, output: str, *options: str) -> list[str]:
    return [tool("cyclonedx-py"), "environment", *options, "-o", output, str(python)]


def sbom4python(python: Path, output: str, form: str) -> list[str]:
    return [
        tool("sbom4python"), "-m", "fleet-api", "--use-pip", "--python", str(python),
        "--sbom", "spdx", "--format", form, "-o", output,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def sboms(tmp_path_factory: pytest.TempPathFactory) -> Sboms:
    work = tmp_path_factory.mktemp("sbom-tools")
    wheels = work / "wheels"
    wheels.mkdir()
    for name, version, requires in PACKAGES:
        wheel(wheels, name, version, requires)
    (work / "pyproject.toml").write_text(PYPROJECT)
    venv.EnvBuilder(with_pip=False).create(work / "fleet")
    python = work / "fleet" / "bin" / "python"
    pip_install(python, wheels, "fleet-api==2.4.1", "fleet-codec==3.0.13")
    root_of = ("--pyproject", "pyproject.toml")
    run_all(
        [
            cyclonedx_py(python, "cdx-json-1", *root_of),
            cyclonedx_py(python, "cdx-json-2", *root_of),
            cyclonedx_py(python, "cdx-xml-1", *root_of, "--of", "XML"),
            cyclonedx_py(python, "cdx-bare-1", "--of", "XML"),  # no root component
            sbom4python(python, "spdx-json-1", "json"),
            sbom4python(python, "spdx-tag-2", "tag"),
        ],
        work,
    )
    pip_install(python, wheels, "fleet-codec==3.0.14")
    run_all(
        [
            cyclonedx_py(python, "cdx-xml-3", *root_of, "--of", "XML"),
            sbom4python(python, "spdx-json-3", "json"),
        ],
        work,
    )
    return Sboms(work)


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, *args])


@pytest.fixture
def url(ledger_url: str) -> str:
    assert run(ledger_url, "init").exit_code == 0
    return ledger_url


def imported(url: str, path: Path, *options: str) -> dict[str, Any]:
    result = run(url, "import", "sbom", str(path), "--env", "production", "--json", *options)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def recorded(report: dict[str, Any]) -> tuple[int, str]:
    """How many builds the import recorded, and the build id."""
    [build] = report["builds"]
    return report["recorded"], build["build_id"]


def graphs(url: str) -> dict[str, tuple[list[str], list[str]]]:
    """Per recorded build id: its roots and each component (``name version``) with
    what it refers to, sorted."""
    found = {}
    for fact in Ledger(locate(url)).facts():
        closure = fact.event["closure"]
        names = [f"{c['name']} {c['version']}" for c in closure]
        found[fact.event["build_id"]] = (
            [names[i] for i in fact.event.get("roots", [])],
            sorted(
                f"{names[i]} -> {', '.join(names[r] for r in c.get('references', []))}"
                for i, c in enumerate(closure)
            ),
        )
    return found


GRAPH_BEFORE = [
    "fleet-api 2.4.1 -> fleet-codec 3.0.13, fleet-http 1.0.0",
    "fleet-codec 3.0.13 -> ",
    "fleet-http 1.0.0 -> fleet-codec 3.0.13",
]
GRAPH_AFTER = [line.replace("3.0.13", "3.0.14") for line in GRAPH_BEFORE]


def differing(first: Path, second: Path, *keys: str) -> None:
    """The two runs' files differ (in ``keys`` of the JSON): the tool did not write the
    same bytes twice, so an equal id comes from the content."""
    one, two = json.loads(first.read_bytes()), json.loads(second.read_bytes())
    assert one != two
    for key in keys:
        path = key.split(".")
        a, b = one, two
        for part in path:
            a, b = a[part], b[part]
        assert a != b, key


def test_cyclonedx_py_output_imports_without_a_build_id(url: str, sboms: Sboms) -> None:
    differing(sboms["cdx-json-1"], sboms["cdx-json-2"], "serialNumber", "metadata.timestamp")
    first = imported(url, sboms["cdx-json-1"])
    count, build_id = recorded(first)
    assert count == 1
    assert build_id.startswith("sbom:")
    assert len(build_id) == len("sbom:") + 64
    [build] = first["builds"]
    assert (build["service"], build["version"], build["artifact"], build["paths"]) == (
        "api", "2.4.1", "api@2.4.1", 3,
    )  # fmt: skip
    assert graphs(url) == {build_id: (["fleet-api 2.4.1"], GRAPH_BEFORE)}
    # The same tool again (new serial number and timestamp), and its XML: the same build.
    assert recorded(imported(url, sboms["cdx-json-2"])) == (0, build_id)
    assert recorded(imported(url, sboms["cdx-xml-1"])) == (0, build_id)
    # The table for people shows the whole id.
    result = run(url, "import", "cyclonedx", str(sboms["cdx-xml-1"]), "--env", "production")
    assert result.exit_code == 0, result.output
    assert f"  {build_id}  " in result.output
    assert "0 builds recorded, 1 already recorded." in result.output


def test_sbom4python_spdx_imports_without_a_build_id(url: str, sboms: Sboms) -> None:
    namespace = json.loads(sboms["spdx-json-1"].read_bytes())["documentNamespace"]
    assert f"DocumentNamespace: {namespace}\n" not in sboms["spdx-tag-2"].read_text()
    first = imported(url, sboms["spdx-json-1"])
    count, build_id = recorded(first)
    assert count == 1
    assert build_id.startswith("sbom:")
    [build] = first["builds"]
    assert (build["service"], build["version"], build["artifact"], build["paths"]) == (
        "fleet-api", "2.4.1", "pkg:pypi/fleet-api@2.4.1", 3,
    )  # fmt: skip
    # The described package is a component too, and the root.
    assert graphs(url) == {build_id: (["fleet-api 2.4.1"], GRAPH_BEFORE)}
    # The same tool again (new namespace and date), in tag-value: the same build.
    assert recorded(imported(url, sboms["spdx-tag-2"])) == (0, build_id)


def test_a_changed_component_is_a_new_build(url: str, sboms: Sboms) -> None:
    _, cyclonedx_before = recorded(imported(url, sboms["cdx-json-1"]))
    _, spdx_before = recorded(imported(url, sboms["spdx-json-1"]))
    count, cyclonedx_after = recorded(imported(url, sboms["cdx-xml-3"]))
    assert count == 1
    count, spdx_after = recorded(imported(url, sboms["spdx-json-3"]))
    assert count == 1
    assert len({cyclonedx_before, spdx_before, cyclonedx_after, spdx_after}) == 4
    found = graphs(url)
    assert found[cyclonedx_after] == found[spdx_after] == (["fleet-api 2.4.1"], GRAPH_AFTER)
    # The environment before the upgrade is still the build it was.
    assert recorded(imported(url, sboms["cdx-xml-1"])) == (0, cyclonedx_before)
    assert recorded(imported(url, sboms["spdx-tag-2"])) == (0, spdx_before)


def test_an_environment_without_a_root_needs_a_service_and_an_artifact(
    url: str, sboms: Sboms
) -> None:
    result = run(url, "import", "sbom", str(sboms["cdx-bare-1"]), "--env", "production")
    assert result.exit_code == 2, result.output
    assert "pass --service and --artifact;" in result.output
    options = ("--service", "api", "--artifact", "registry.internal/api:2.4.1")
    count, build_id = recorded(imported(url, sboms["cdx-bare-1"], *options))
    assert count == 1
    assert build_id.startswith("sbom:")
    # The root component is part of the content: this is not the build with it.
    _, with_root = recorded(imported(url, sboms["cdx-json-1"]))
    assert with_root != build_id
