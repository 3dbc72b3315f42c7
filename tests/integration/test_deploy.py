"""deploy/: the NixOS module, the systemd units and the compose file are well formed.

Real tools check them where they exist here: ``nix-instantiate`` (Debian's nix-bin) parses
the module and evaluates it against a stub ``lib``/``pkgs`` (nixpkgs is not available
offline), ``systemd-analyze verify`` (Debian's systemd) checks every unit, and each
command line the units run is checked against ``ledger <subcommand> --help``. Docker
cannot run here: the compose file is only loaded as YAML.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MODULE = DEPLOY / "nixos" / "module.nix"
SYSTEMD = DEPLOY / "systemd"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
LEDGER = Path(sys.executable).parent / "ledger"
UNIT_BINARY = "/usr/local/bin/ledger"

COMMANDS = ("serve", "project", "collect", "publish", "ingest")
UNITS = (
    "deploy-ledger-init.service",
    "deploy-ledger-serve.service",
    "deploy-ledger-project.service",
    "deploy-ledger-collect.service",
    "deploy-ledger-publish.service",
    "deploy-ledger-ingest@.service",
)
HARDENING = (
    "ProtectSystem",
    "ProtectHome",
    "NoNewPrivileges",
    "PrivateTmp",
    "PrivateDevices",
    "RestrictAddressFamilies",
    "SystemCallFilter",
    "CapabilityBoundingSet",
)


def tool(name: str, package: str) -> str:
    """The path of a system tool; fails (never skips) naming the Debian package."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.fail(
            f"{name} is missing: install Debian's {package} package "
            f"(apt-get install {package}; tools/system-deps.sh should do it)"
        )
    return path


def run(
    *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False
    )


# --- NixOS module -----------------------------------------------------------------------


def test_nixos_module_parses() -> None:
    result = run(tool("nix-instantiate", "nix-bin"), "--parse", str(MODULE))
    assert result.returncode == 0, result.stderr


def test_nixos_module_mentions_every_service_and_hardening_setting() -> None:
    text = MODULE.read_text()
    assert "services.deploy-ledger" in text
    for command in ('"serve"', "project --follow", '"collect"', '"publish"', '"ingest"'):
        assert command in text, command
    for option in ("--kafka", "--topic", "--group", "--allow-anonymous-read", "--riemann"):
        assert f'"{option}"' in text, option
    assert "DynamicUser" in text or "User = user" in text
    for setting in (*HARDENING, "Restart", "StateDirectory", "LoadCredential"):
        assert f"{setting} =" in text, setting
    for name in ("ensureDatabases", "ensureUsers", "environmentFile", "createLocalDatabase"):
        assert name in text, name


# A stand-in for nixpkgs' lib and pkgs, just enough to evaluate the module's `config` for
# given option values (defaults are taken from the module's own option declarations).
STUB = r"""
{ module, overrides }:
let
  b = builtins;
  lib = rec {
    mkOption = o: o // { _isOption = true; };
    mkEnableOption = d: mkOption { default = false; description = d; };
    mkIf = c: v: if c then v else { };
    mkMerge = l: l;
    types = {
      package = "package"; str = "str"; bool = "bool"; port = "port"; path = "path";
      nullOr = t: "nullOr ${t}"; ints.positive = "positive";
    };
    optionalAttrs = c: a: if c then a else { };
    optionals = c: l: if c then l else [ ];
    escapeShellArgs = l: b.concatStringsSep " " (map (x: "'${x}'") l);
    hasPrefix = p: s: b.substring 0 (b.stringLength p) s == p;
    range = first: last: b.genList (i: first + i) (last - first + 1);
    literalExpression = x: x;
  };
  pkgs.writeShellScript = name: text: "/nix/store/stub-${name}\n${text}";
  defaults = opts: b.mapAttrs
    (n: v: if v._isOption or false then v.default or null else defaults v) opts;
  merge = a: o: a // b.mapAttrs
    (n: v: if b.isAttrs v && b.isAttrs (a.${n} or null) then merge a.${n} v else v) o;
  evaluated = import module { inherit config lib pkgs; };
  config.services.deploy-ledger =
    merge (defaults evaluated.options.services.deploy-ledger) overrides;
in evaluated.config
"""


def evaluate(tmp_path: Path, overrides: str) -> dict[str, Any]:
    """The module's merged ``config`` (its mkMerge parts folded together) for overrides."""
    stub = tmp_path / "stub.nix"
    stub.write_text(STUB)
    result = run(
        tool("nix-instantiate", "nix-bin"),
        "--eval",
        "--strict",
        "--json",
        str(stub),
        "--arg",
        "module",
        str(MODULE),
        "--arg",
        "overrides",
        overrides,
    )
    assert result.returncode == 0, result.stderr
    parts = json.loads(result.stdout)
    merged: dict[str, Any] = {"services": {}, "targets": {}, "assertions": []}
    for part in parts:
        systemd = part.get("systemd", {})
        merged["services"].update(systemd.get("services", {}))
        merged["targets"].update(systemd.get("targets", {}))
        merged["assertions"] += part.get("assertions", [])
        if "postgresql" in part.get("services", {}):
            merged["postgresql"] = part["services"]["postgresql"]
    return merged


def test_nixos_module_evaluates_every_service_hardened(tmp_path: Path) -> None:
    config = evaluate(
        tmp_path,
        """{ enable = true; package = "/nix/store/x-deploy-ledger";
             kafka.bootstrap = "kafka1:9092";
             serve = { allowAnonymousRead = true; port = 9090; };
             collect = { enable = true; riemann = "riemann:5555";
                         slackWebhookFile = "/run/secrets/slack-webhook"; };
             publish.enable = true;
             ingest = { enable = true; workers = 3; group = "workers"; }; }""",
    )
    services = config["services"]
    assert set(services) == {f"deploy-ledger-{name}" for name in ("init", *COMMANDS[:4])} | {
        "deploy-ledger-ingest@"
    }
    for name, unit in services.items():
        settings = unit["serviceConfig"]
        for key in HARDENING:
            assert key in settings, (name, key)
        assert settings["User"] == "deploy-ledger"
        assert settings["ProtectSystem"] == "strict"
        assert settings["CapabilityBoundingSet"] == ""
        assert settings["RestrictAddressFamilies"] == ["AF_UNIX", "AF_INET", "AF_INET6"]
        assert settings["StateDirectory"] == "deploy-ledger"
        if name != "deploy-ledger-init":
            assert settings["Restart"] == "on-failure"
            assert "deploy-ledger-init.service" in unit["requires"]
        assert unit["environment"]["LEDGER_URL"].startswith("postgresql://deploy-ledger@/")
    serve = services["deploy-ledger-serve"]["serviceConfig"]["ExecStart"]
    for argument in ("'serve'", "'9090'", "'--allow-anonymous-read'", "'--no-project'"):
        assert argument in serve
    assert services["deploy-ledger-project"]["serviceConfig"]["ExecStart"].endswith(
        "ledger project --follow"
    )
    collect = services["deploy-ledger-collect"]["serviceConfig"]
    assert collect["LoadCredential"] == ["slack-webhook:/run/secrets/slack-webhook"]
    assert "'--riemann' 'riemann:5555'" in collect["ExecStart"]
    assert "/run/secrets" not in collect["ExecStart"]  # the webhook is read at run time
    ingest = services["deploy-ledger-ingest@"]["serviceConfig"]["ExecStart"]
    assert "'--kafka' 'kafka1:9092'" in ingest
    assert "'--group' 'workers'" in ingest
    assert config["targets"]["deploy-ledger-ingest"]["wants"] == [
        f"deploy-ledger-ingest@{n}.service" for n in (1, 2, 3)
    ]
    assert config["postgresql"]["ensureDatabases"] == ["deploy-ledger"]
    assert all(check["assertion"] for check in config["assertions"])


def test_nixos_module_defaults_and_assertions(tmp_path: Path) -> None:
    config = evaluate(
        tmp_path,
        """{ enable = true; package = "/p"; publish.enable = true;
             createLocalDatabase = true; databaseUrl = "/var/lib/deploy-ledger/ledger.db"; }""",
    )
    assert set(config["services"]) == {
        "deploy-ledger-init",
        "deploy-ledger-serve",
        "deploy-ledger-project",
        "deploy-ledger-publish",
    }
    failed = [check["message"] for check in config["assertions"] if not check["assertion"]]
    assert len(failed) == 2, failed  # no kafka.bootstrap; a local database for SQLite


# --- systemd units ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The units with ExecStart pointing at this venv's ledger (verify checks it exists);
    the template also as its instance deploy-ledger-ingest@1.service."""
    folder = tmp_path_factory.mktemp("units")
    for name in UNITS:
        text = (SYSTEMD / name).read_text()
        assert UNIT_BINARY in text, name
        (folder / name).write_text(text.replace(UNIT_BINARY, str(LEDGER)))
    shutil.copy(folder / "deploy-ledger-ingest@.service", folder / "deploy-ledger-ingest@1.service")
    return folder


@pytest.mark.parametrize(
    "unit", [name.replace("@.", "@1.") for name in UNITS], ids=lambda name: name
)
def test_unit_passes_systemd_analyze_verify(units: Path, unit: str) -> None:
    result = run(tool("systemd-analyze", "systemd"), "verify", f"./{unit}", cwd=units)
    # Unrelated system units may draw warnings; any line about ours fails the test.
    about_unit = [line for line in result.stderr.splitlines() if "deploy-ledger" in line]
    assert result.returncode == 0, result.stderr
    assert about_unit == [], result.stderr


def unit_settings(name: str) -> list[tuple[str, str]]:
    pairs = []
    for line in (SYSTEMD / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            pairs.append((key.strip(), value.strip()))
    return pairs


@pytest.mark.parametrize("unit", UNITS)
def test_unit_is_hardened_and_reads_the_environment_file(unit: str) -> None:
    settings = dict(unit_settings(unit))
    assert settings["EnvironmentFile"] == "/etc/deploy-ledger/ledger.env"
    assert settings["User"] == "deploy-ledger"
    assert settings["ProtectSystem"] == "strict"
    assert settings["CapabilityBoundingSet"] == ""
    assert settings["RestrictAddressFamilies"] == "AF_UNIX AF_INET AF_INET6"
    assert settings["SystemCallFilter"] == "@system-service"
    assert settings["StateDirectory"] == "deploy-ledger"
    for key in HARDENING:
        assert key in settings, key
    if unit != "deploy-ledger-init.service":
        assert settings["Restart"] == "on-failure"
        assert "deploy-ledger-init.service" in settings["Requires"]


def test_sysusers_declares_the_units_user() -> None:
    lines = [
        line.split()
        for line in (SYSTEMD / "deploy-ledger.sysusers.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert [line[:2] for line in lines] == [["u", "deploy-ledger"]]


def help_text(subcommand: str) -> str:
    result = run(str(LEDGER), subcommand, "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("unit", UNITS)
def test_unit_command_line_is_accepted_by_the_cli(unit: str) -> None:
    settings = unit_settings(unit)
    (exec_start,) = [value for key, value in settings if key == "ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0] == UNIT_BINARY
    subcommand = argv[1]
    assert subcommand in (*COMMANDS, "init")
    assert unit == f"deploy-ledger-{subcommand}{'@' if subcommand == 'ingest' else ''}.service"
    text = help_text(subcommand)
    for option in (word for word in argv[2:] if word.startswith("--")):
        assert re.search(rf"(^|\s){re.escape(option)}\b", text), (unit, option)
    # Every variable the command line uses has a default here or in the example env file.
    defined = {
        assignment.split("=", 1)[0]
        for key, value in settings
        if key == "Environment"
        for assignment in value.split()
    }
    example = (SYSTEMD / "ledger.env.example").read_text()
    defined |= set(re.findall(r"^#?([A-Z_]+)=", example, flags=re.MULTILINE))
    used = set(re.findall(r"\$\{?([A-Z_]+)\}?", exec_start))
    assert used <= defined, used - defined


def test_example_environment_file_names_the_binary_and_the_cli_variables() -> None:
    example = (SYSTEMD / "ledger.env.example").read_text()
    assert UNIT_BINARY in example
    for variable in ("LEDGER_URL", "LEDGER_VIEWS_URL", "LEDGER_KAFKA", "LEDGER_RIEMANN"):
        assert f"{variable}=" in example, variable
    assert "LEDGER_SLACK_WEBHOOK=" in example
    # The CLI reads these itself: check that its help still says so.
    root = run(str(LEDGER), "--help").stdout
    assert "LEDGER_URL" in root
    assert "LEDGER_VIEWS_URL" in root
    assert "LEDGER_KAFKA" in help_text("publish")
    collect = help_text("collect")
    assert "LEDGER_RIEMANN" in collect
    assert "LEDGER_SLACK_WEBHOOK" in collect


# --- compose ----------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    """compose.yaml through PyYAML's safe_load (PyYAML is in the test extra)."""
    import yaml

    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_holds_every_service() -> None:
    services: dict[str, Any] = load_compose()["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["riemann"]["image"].startswith("riemannio/riemann")
    topics = " ".join(services["kafka-topics"]["command"])
    assert "kafka-topics.sh" in topics
    for topic in ("ledger.ingest:", "ledger.ingest.dead-letter:", "ledger.events:"):
        assert topic in topics
    assert services["ledger-init"]["command"] == ["init"]
    assert services["ledger-serve"]["ports"] == ["8080:8080"]
    ledger_services = {f"ledger-{name}" for name in COMMANDS}
    assert ledger_services <= set(services)
    for name in ledger_services:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/compose/Dockerfile", name
        assert service["depends_on"]["ledger-init"] == {
            "condition": "service_completed_successfully"
        }, name
        command = service["command"]
        assert command[0] == name.removeprefix("ledger-")
        text = help_text(command[0])
        for option in (word for word in command[1:] if word.startswith("--")):
            assert option in text, (name, option)
    for name in ("ledger-publish", "ledger-ingest"):
        assert "kafka-topics" in services[name]["depends_on"]
    assert "riemann" in services["ledger-collect"]["depends_on"]


def test_compose_dockerfile_installs_the_repository() -> None:
    text = (DEPLOY / "compose" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "pip install ." in text
    assert 'ENTRYPOINT ["ledger"]' in text


def verified_standalone_unit(name: str, tmp_path: Path) -> dict[str, str]:
    """The settings of a unit that runs without the ledger's own units (the host agent,
    the witness), once `systemd-analyze verify` passed it and every hardening setting
    is in it."""
    text = (SYSTEMD / name).read_text()
    (tmp_path / name).write_text(text.replace(UNIT_BINARY, str(LEDGER)))
    result = run(tool("systemd-analyze", "systemd"), "verify", f"./{name}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "deploy-ledger" in line] == []
    settings = dict(unit_settings(name))
    for key in HARDENING:
        assert key in settings, key
    return settings


def test_the_host_agent_unit_verifies_and_its_command_line_is_accepted(tmp_path: Path) -> None:
    name = "deploy-ledger-agent.service"
    settings = verified_standalone_unit(name, tmp_path)
    assert settings["Restart"] == "on-failure"
    argv = shlex.split(settings["ExecStart"])
    assert argv[:4] == [UNIT_BINARY, "agent", "run", "%H"]
    help_run = run(str(LEDGER), "agent", "run", "--help").stdout
    for option in (word for word in argv[4:] if word.startswith("--")):
        assert re.search(rf"(^|\s){re.escape(option)}\b", help_run), option


def test_publish_unit_signs_checkpoints_with_the_documented_key(tmp_path: Path) -> None:
    """The environment file turns signing on: without LEDGER_CHECKPOINT_INTERVAL the publish
    unit never signs a checkpoint and witnesses following TOPIC.checkpoints see nothing;
    without it set, the unit still starts (nothing on its command line needs it)."""
    settings = unit_settings("deploy-ledger-publish.service")
    (exec_start,) = [value for key, value in settings if key == "ExecStart"]
    assert "CHECKPOINT" not in exec_start  # an unset variable must not break the command
    example = (SYSTEMD / "ledger.env.example").read_text()
    assert "LEDGER_CHECKPOINT_KEY=/etc/deploy-ledger/checkpoint.key" in example
    assert "\nLEDGER_CHECKPOINT_INTERVAL=" in example
    assert "ledger keys generate" in example
    # `ledger publish` reads the interval from the environment: without a key it refuses.
    refused = run(
        str(LEDGER), "--ledger", str(tmp_path / "l.db"), "publish", "--kafka", "127.0.0.1:9",
        env={**os.environ, "LEDGER_CHECKPOINT_INTERVAL": "60s", "LEDGER_CHECKPOINT_KEY": ""},
    )  # fmt: skip
    assert refused.returncode != 0
    assert "checkpoint key" in refused.stderr, refused.stderr


def test_the_witness_unit_verifies_is_hardened_and_its_command_line_is_accepted(
    tmp_path: Path,
) -> None:
    """The witness runs on a second machine (no ledger.env, no deploy-ledger-init), so it
    is checked here rather than with the ledger's own units."""
    name = "deploy-ledger-witness.service"
    settings = verified_standalone_unit(name, tmp_path)
    assert settings["User"] == "deploy-ledger"
    assert settings["ProtectSystem"] == "strict"
    assert settings["CapabilityBoundingSet"] == ""
    assert settings["Restart"] == "on-failure"
    assert settings["EnvironmentFile"] == "/etc/deploy-ledger/witness.env"
    argv = shlex.split(settings["ExecStart"])
    assert argv[:2] == [UNIT_BINARY, "witness"]
    state = argv[argv.index("--state") + 1]
    assert state.startswith(f"/var/lib/{settings['StateDirectory']}/"), state
    witness_help = help_text("witness")
    for option in (word for word in argv[2:] if word.startswith("--")):
        assert re.search(rf"(^|\s){re.escape(option)}\b", witness_help), option
    text = (SYSTEMD / name).read_text()
    for variable in ("LEDGER_CHECKPOINT_VKEY", "LEDGER_RIEMANN", "LEDGER_SLACK_WEBHOOK"):
        assert variable in text, variable


def test_nixos_module_publish_signs_checkpoints_with_a_key_file(tmp_path: Path) -> None:
    """The key file is named by a string (never copied into the Nix store) and turns the
    checkpoint options on."""
    config = evaluate(
        tmp_path,
        """{ enable = true; package = "/p"; kafka.bootstrap = "k:9092"; publish = {
             enable = true; checkpointKeyFile = "/var/lib/keys/checkpoint.key";
             checkpointInterval = "5m"; }; }""",
    )
    publish = config["services"]["deploy-ledger-publish"]
    assert "'--checkpoint-interval' '5m'" in publish["serviceConfig"]["ExecStart"]
    assert publish["environment"]["LEDGER_CHECKPOINT_KEY"] == "/var/lib/keys/checkpoint.key"
