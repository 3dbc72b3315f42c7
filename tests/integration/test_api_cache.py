"""Read answers kept per (question, views position), ETags and 304, against a real
uvicorn server on both backends: a repeated question is answered from memory with the
same ETag, never past a move of the views (by the server itself or by another process),
never to a caller who may not read, and never for an error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.answers import AnswerCache, answer_of, matches
from api.app import ServerSettings
from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views
from tests.integration.test_api import fleet, post, settled
from tests.services.api import ApiServer, serve
from tests.story import Story, openssl

WHERE = "/api/where?name=openssl&limit=1"


def fetch(server: ApiServer, path: str, role: str = "reader", **headers: str) -> httpx.Response:
    """``path`` exactly as written (its query in that order), as ``role``."""
    return httpx.get(server.base + path, headers={**server.headers(role), **headers}, timeout=30)


@pytest.fixture
def story_server(ledger: Ledger) -> Iterator[ApiServer]:
    fleet(ledger)
    yield from serve(ledger.location.url, ServerSettings(stream_interval=0.05))


def test_the_same_question_gets_the_same_etag_and_then_304(story_server: ApiServer) -> None:
    settled(story_server)
    first, second = fetch(story_server, WHERE), fetch(story_server, WHERE)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    assert first.headers["etag"].startswith('"')  # strong
    assert first.headers["cache-control"] == "private, no-cache"
    assert first.json()["placements"]["total"] == 2
    unchanged = fetch(story_server, WHERE, **{"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == first.headers["etag"]
    other = fetch(story_server, WHERE, **{"If-None-Match": '"not-this-one"'})
    assert (other.status_code, other.content) == (200, first.content)


def test_parameter_order_does_not_split_the_cache(story_server: ApiServer) -> None:
    settled(story_server)
    one = fetch(story_server, "/api/where?name=openssl&limit=1&env=production")
    other = fetch(story_server, "/api/where?env=production&limit=1&name=openssl")
    assert (one.headers["x-cache"], other.headers["x-cache"]) == ("miss", "hit")
    assert one.content == other.content
    # The next page's link is the same whatever order the caller wrote.
    assert one.json()["placements"]["next"] == (
        "/api/where?env=production&name=openssl&offset=1&limit=1"
    )


def test_the_answer_and_etag_move_with_the_views(story_server: ApiServer) -> None:
    settled(story_server)
    before = fetch(story_server, "/api/generations?env=production")
    assert fetch(story_server, "/api/generations?env=production").headers["x-cache"] == "hit"
    tagged = post(story_server, "/api/generations/2/tags", "admin", {"tags": ["audited"]})
    assert tagged.status_code == 201
    settled(story_server)
    after = fetch(story_server, "/api/generations?env=production",
                  **{"If-None-Match": before.headers["etag"]})  # fmt: skip
    assert after.status_code == 200
    assert after.headers["x-cache"] == "miss"
    assert after.headers["etag"] != before.headers["etag"]
    tags = {g["number"]: g["tags"] for g in after.json()["items"]}
    assert "audited" in tags[2]
    assert "audited" not in {g["number"]: g["tags"] for g in before.json()["items"]}[2]


def test_views_moved_by_another_process_are_seen_at_once(ledger: Ledger) -> None:
    """With ``--no-project`` the views move elsewhere (here as ``ledger project`` moves
    them): the next answer follows them, without waiting for the stream's next look."""
    fleet(ledger)
    settings = ServerSettings(project=False, stream_interval=3600)
    for server in serve(ledger.location.url, settings):
        first = fetch(server, WHERE)
        assert fetch(server, WHERE).headers["x-cache"] == "hit"
        s = Story()
        later = s.build("api", "1.3", openssl("3.0.13"))
        s.plan(5, {("h3", "api"): later}, parent=4)
        s.activate("h3", "api", later, 5)
        s.record(ledger)
        # Appended, not yet projected: the kept answer is still the views' answer.
        assert fetch(server, WHERE).headers["x-cache"] == "hit"
        elsewhere = Views(Ledger(locate(ledger.location.url)))  # as `ledger project` does
        try:
            assert elsewhere.catch_up()
        finally:
            elsewhere.recorder.datastore.close()
            elsewhere.ledger.close()
        moved = fetch(server, WHERE, **{"If-None-Match": first.headers["etag"]})
        assert (moved.status_code, moved.headers["x-cache"]) == (200, "miss")
        assert moved.json()["placements"]["total"] == 3
        assert moved.headers["etag"] != first.headers["etag"]


def test_readers_and_admins_get_the_right_answer_and_others_none(story_server: ApiServer) -> None:
    settled(story_server)
    reader = fetch(story_server, WHERE)
    admin = fetch(story_server, WHERE, "admin")
    assert admin.status_code == 200
    assert admin.headers["x-cache"] == "hit"  # the answer does not depend on the role
    assert admin.content == reader.content
    for headers in ({}, {"Authorization": "Bearer dl_not-a-token"}):
        refused = httpx.get(story_server.base + WHERE, headers=headers, timeout=30)
        assert refused.status_code == 401
        assert "etag" not in refused.headers
        revalidated = httpx.get(
            story_server.base + WHERE,
            headers={**headers, "If-None-Match": reader.headers["etag"]},
            timeout=30,
        )
        assert revalidated.status_code == 401  # a 304 would say "you may keep it"
    # A parameter check still runs on a question already answered.
    assert fetch(story_server, WHERE + "&limit=2").status_code == 422


def test_errors_are_not_kept(story_server: ApiServer) -> None:
    settled(story_server)
    for _ in range(2):
        missing = fetch(story_server, "/api/generations/5")
        assert missing.status_code == 404
        assert "x-cache" not in missing.headers
        assert "etag" not in missing.headers
        assert fetch(story_server, "/api/where?name=libfoo").status_code == 404
    s = Story()
    libfoo = {"name": "libfoo", "version": "1.0", "hash": "sha256:" + "f" * 64,
              "store_path": f"/nix/store/{'f' * 32}-libfoo-1.0"}  # fmt: skip
    s.plan(5, {("h1", "api"): s.build("api", "2.0", libfoo)}, parent=4)
    s.record(story_server.ledger)
    settled(story_server)
    found = fetch(story_server, "/api/generations/5")
    assert (found.status_code, found.headers["x-cache"]) == (200, "miss")
    assert fetch(story_server, "/api/where?name=libfoo").status_code == 200


def test_clock_dependent_answers_are_validated_not_kept(story_server: ApiServer) -> None:
    """Topology and manifests mark health stale against the clock: never kept, but
    they still carry an ETag and answer 304."""
    settled(story_server)
    for path in ("/api/topology", "/api/hosts/h1/manifest"):
        first = fetch(story_server, path)
        assert first.status_code == 200
        assert "x-cache" not in first.headers
        again = fetch(story_server, path, **{"If-None-Match": first.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")


def test_the_stream_is_not_cached(story_server: ApiServer) -> None:
    with httpx.stream("GET", story_server.base + "/api/stream",
                      headers=story_server.headers("reader"), timeout=30) as stream:  # fmt: skip
        assert stream.headers["cache-control"] == "no-store"
        assert "etag" not in stream.headers


# --- the cache itself -------------------------------------------------------------------


def key(position: int, name: str) -> tuple[Any, ...]:
    return ((("Ledger/v", position),), "/api/where", (), (("name", name),))


def test_the_cache_is_bounded_least_recently_used_first_out() -> None:
    here = (("Ledger/v", 1),)
    cache = AnswerCache(entries=2, size=800)
    for name in ("a", "b"):
        cache.put(here, key(1, name), answer_of(name.encode()))
    assert cache.get(key(1, "a")) is not None  # a is now the most recently used
    cache.put(here, key(1, "c"), answer_of(b"c"))
    assert [cache.get(key(1, n)) is not None for n in "abc"] == [True, False, True]
    assert len(cache) == 2
    by_size = AnswerCache(entries=100, size=800)
    for n in range(9):
        by_size.put(here, key(1, str(n)), answer_of(b"x" * 100))
    assert (len(by_size), by_size.bytes) == (8, 800)
    assert by_size.get(key(1, "0")) is None
    assert by_size.get(key(1, "8")) is not None
    by_size.put(here, key(1, "big"), answer_of(b"x" * 101))  # over an eighth: not kept
    assert by_size.get(key(1, "big")) is None
    assert len(by_size) == 8


def test_a_cache_of_no_answers_keeps_none() -> None:
    """`ledger serve --cache-answers 0`."""
    cache = AnswerCache(entries=0)
    cache.put((("Ledger/v", 1),), key(1, "a"), answer_of(b"a"))
    assert (len(cache), cache.bytes, cache.get(key(1, "a"))) == (0, 0, None)


def test_a_move_of_the_views_drops_the_answers_kept_before() -> None:
    cache = AnswerCache()
    cache.put((("Ledger/v", 1),), key(1, "a"), answer_of(b"a"))
    cache.put((("Ledger/v", 2),), key(2, "a"), answer_of(b"new"))
    assert cache.get(key(1, "a")) is None
    assert len(cache) == 1
    assert cache.bytes == 3


def test_if_none_match() -> None:
    etag = answer_of(b"x").etag
    assert matches(etag, etag)
    assert matches(f"W/{etag}", etag)
    assert matches("*", etag)
    assert matches(f'"other", {etag}', etag)
    assert not matches('"other"', etag)
    assert not matches(None, etag)
    assert not matches("", etag)
