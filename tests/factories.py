"""Valid events of every kind, for tests to start from and vary."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ledger.events import Envelope, parse_event

BUILD_ID = "0c9w2k7q0mbw4a1q2x5lq9lq0pb1jr4x"
OPENSSL = {
    "name": "openssl",
    "version": "3.0.13",
    "store_path": "/nix/store/4x8v1a9l8h2q2s7m0c3d6f5g4h3j2k1l-openssl-3.0.13",
    "hash": "sha256:" + "ab" * 32,
}
ENTRY = {"host": "web-001", "service": "api", "build_id": BUILD_ID, "depends_on": ["auth"]}

FIELDS: dict[str, dict[str, Any]] = {
    "build_recorded": {
        "build_id": BUILD_ID,
        "service": "api",
        "version": "2.4.1",
        "artifact": f"/nix/store/{BUILD_ID}-api-2.4.1",
        "source_revision": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "closure": [OPENSSL],
    },
    "build_failed": {"service": "api", "version": "2.4.2", "reason": "tests failed"},
    "distribution_completed": {
        "host": "web-001",
        "service": "api",
        "build_id": BUILD_ID,
        "bytes": 1024,
        "duration_s": 1.5,
    },
    "distribution_failed": {
        "host": "web-001",
        "service": "api",
        "build_id": BUILD_ID,
        "reason": "disk full",
    },
    "activation_completed": {
        "host": "web-001",
        "service": "api",
        "build_id": BUILD_ID,
        "generation": 1,
    },
    "activation_failed": {
        "host": "web-001",
        "service": "api",
        "build_id": BUILD_ID,
        "generation": 1,
        "reason": "health check failed",
        "exit_code": 1,
        "log_excerpt": "line 1\nline 2",
    },
    "drain_started": {"host": "web-001", "service": "api", "build_id": BUILD_ID, "in_flight": 12},
    "drain_completed": {"host": "web-001", "service": "api", "build_id": BUILD_ID},
    "drain_timed_out": {
        "host": "web-001",
        "service": "api",
        "build_id": BUILD_ID,
        "in_flight": 3,
        "timeout_s": 30,
    },
    "deactivated": {"host": "web-001", "service": "api", "build_id": BUILD_ID},
    "health_reported": {
        "host": "web-001",
        "service": "api",
        "state": "critical",
        "metric": 2.5,
        "ttl_s": 60,
    },
    "generation_planned": {"reason": "deploy", "manifest": [ENTRY], "tags": ["release-1"]},
    "generation_completed": {"number": 1},
    "generation_failed": {"number": 1, "reason": "3 hosts failed"},
    "generation_tagged": {"number": 1, "tags": ["known-good"]},
    "host_reported": {"host": "web-001", "manifest": [ENTRY]},
    "advisory_recorded": {
        "env": "*",
        "advisory_id": "CVE-2014-0160",
        "database": "nvd",
        "aliases": ["GHSA-0000-0000-0000"],
        "published": "2014-04-07T22:55:03Z",
        "modified": "2024-11-21T02:00:00Z",
        "summary": "The TLS heartbeat extension reads past the end of a buffer.",
        "severity": [
            {
                "type": "CVSS_V3",
                "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
                "score": 7.5,
            }
        ],
        "affected": [
            {
                "ecosystem": "cpe",
                "name": "openssl",
                "vendor": "openssl",
                "bounds": [{"start": "1.0.1", "end": "1.0.1g"}],
            },
            {
                "ecosystem": "deb",
                "name": "openssl",
                "source_ecosystem": "Debian:7",
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": "1.0.1e-2+deb7u5"}],
                    }
                ],
            },
        ],
        "unmatched": ["a GIT range of https://github.com/openssl/openssl"],
    },
}


def event_dict(kind: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": kind,
        "event_id": str(uuid.uuid4()),
        "env": "production",
        "occurred_at": "2026-03-11T14:10:00Z",
        "actor": "ci@test",
        **FIELDS[kind],
    }
    data.update(overrides)
    return data


def make_event(kind: str, **overrides: Any) -> Envelope:
    return parse_event(json.dumps(event_dict(kind, **overrides)))


def jsonl(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)
