"""``vulns`` counts each host and service once per vulnerability, and judges each record on
its own, on both backends.

``projections.vulns`` reads the closures' rows once for every candidate record
(``affected_builds_each``) and counts a vulnerability's hosts and services as the union
of its builds' bitmaps (``Reach``). The story here is made so that the shortcuts those
could take give other numbers: two records of one vulnerability reach overlapping hosts
through different builds (summing per record or per build counts h1 twice), two records
name the same package with different versions (sharing verdicts between records mixes
them up), and a component is written ``OpenSSL`` while NVD names ``openssl`` (rows must
be grouped by the ASCII fold, as the matching does). The expected figures are worked out
by hand from the story.
"""

from __future__ import annotations

from typing import Any

from ledger.application import Ledger
from projections.runner import Views
from projections.vulns import vulns
from tests.story import Story, minute, openssl, zlib


def component(name: str, version: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "store_path": f"/nix/store/{'c' * 32}-{name}-{version}",
        "hash": "sha256:" + (name + version).encode().hex().ljust(64, "0")[:64],
    }


def nvd(
    story: Story, advisory_id: str, *affected: dict[str, Any], database: str = "nvd", **fields: Any
) -> None:
    story.add(
        "advisory_recorded", env="*", advisory_id=advisory_id, database=database,
        modified=minute(story.clock + 1).isoformat(), severity=[], unmatched=[],
        affected=list(affected), **{"aliases": [], **fields},
    )  # fmt: skip


def cpe(name: str, **bounds: Any) -> dict[str, Any]:
    return {"ecosystem": "cpe", "name": name, "vendor": name, "bounds": [bounds]}


def fleet() -> Story:
    """h1 runs api (openssl 1.0.1p, zlib 1.2.13) and web (OpenSSL 1.0.1p); h2 runs api;
    h3 runs web 2 (zlib 1.3.1 only). From minute 30, h2's api runs api 2 (zlib 1.3.1)."""
    s = Story()
    api = s.build("api", "1.0", openssl("1.0.1p"), zlib("1.2.13"))
    web = s.build("web", "1.0", component("OpenSSL", "1.0.1p"))
    web2 = s.build("web", "2.0", zlib("1.3.1"))
    api2 = s.build("api", "2.0", zlib("1.3.1"))
    placements = {("h1", "api"): api, ("h1", "web"): web, ("h2", "api"): api, ("h3", "web"): web2}
    s.plan(1, placements)
    for (host, service), build in placements.items():
        s.activate(host, service, build, 1)
    s.add("generation_completed", number=1)
    nvd(s, "CVE-2099-0001", cpe("openssl", end="1.0.2"))
    nvd(s, "GHSA-aaaa-0001-xxxx", cpe("zlib"), database="osv", aliases=["CVE-2099-0001"])
    nvd(s, "CVE-2099-0002", cpe("zlib", start="1.2.13", end="1.2.13", end_including=True))
    nvd(s, "CVE-2099-0003", cpe("libnothing"))
    s.plan(2, {**placements, ("h2", "api"): api2}, at=30)
    s.replace("h2", "api", api, api2, 2)
    s.add("generation_completed", number=2)
    return s


def counts(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (r["id"], r["aliases"], r["hosts"], r["services"],
         [(p["name"], p["version"], p["fixed"]) for p in r["packages"]])
        for r in rows
    ]  # fmt: skip


def test_vulns_counts_hosts_and_services_once_across_records_and_builds(ledger: Ledger) -> None:
    fleet().record(ledger)
    views = Views(ledger)
    views.catch_up()
    before = counts(vulns(views, at=minute(29)))
    assert before == [
        # CVE-2099-0001 (openssl via api and web) joined with the GHSA (zlib via api and
        # web 2): builds api, web, web 2 → hosts h1, h2, h3; services h1/api, h1/web,
        # h2/api, h3/web.
        ("CVE-2099-0001", ["GHSA-aaaa-0001-xxxx"], 3, 4,
         [("OpenSSL", "1.0.1p", "1.0.2"), ("openssl", "1.0.1p", "1.0.2"),
          ("zlib", "1.2.13", None), ("zlib", "1.3.1", None)]),
        # zlib 1.2.13 only: api → h1/api, h2/api.
        ("CVE-2099-0002", [], 2, 2, [("zlib", "1.2.13", None)]),
    ]  # fmt: skip
    now = counts(vulns(views))
    assert now == [
        # h2's api runs api 2 now (zlib 1.3.1): still reached, by the GHSA.
        ("CVE-2099-0001", ["GHSA-aaaa-0001-xxxx"], 3, 4,
         [("OpenSSL", "1.0.1p", "1.0.2"), ("openssl", "1.0.1p", "1.0.2"),
          ("zlib", "1.2.13", None), ("zlib", "1.3.1", None)]),
        ("CVE-2099-0002", [], 1, 1, [("zlib", "1.2.13", None)]),
    ]  # fmt: skip
    assert counts(vulns(views, env="production")) == now
