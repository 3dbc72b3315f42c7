"""What the views know about generations and builds, for the alert state and its
messages: a generation's manifest, the hosts a service is placed on, what a rollback
undoes, a build's version."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ledger.application import batched
from projections.generations import manifest_entries
from projections.runner import Views
from projections.view import IN_LIST


class Fleet:
    """What the views know about generations and builds, for alert texts. These facts
    never change once recorded (a generation's manifest, a build's version), so they
    are cached. The collector makes sure the views have seen every fact it processes."""

    def __init__(self, views: Views) -> None:
        self.views = views
        self._placements: dict[tuple[str, int], dict[str, dict[str, str]]] = {}

    def placements(self, env: str, number: int) -> dict[str, dict[str, str]]:
        """Generation ``number``'s desired manifest: host → service → build id."""
        key = (env, number)
        if key not in self._placements:
            if len(self._placements) >= 4:
                self._placements.pop(next(iter(self._placements)))
            entries: list[dict[str, Any]] = []
            if number:
                with self.views.read() as tx:
                    entries = manifest_entries(tx, env, number) or []
            placed: dict[str, dict[str, str]] = {}
            for entry in entries:
                placed.setdefault(entry["host"], {})[entry["service"]] = entry["build_id"]
            self._placements[key] = placed
        return self._placements[key]

    def hosts(self, env: str, number: int, service: str) -> int:
        """Hosts of the generation the service is placed on (any service: ``''``)."""
        placed = self.placements(env, number)
        return sum(1 for services in placed.values() if not service or service in services)

    def undone_by(self, env: str, rollback: int) -> list[int]:
        """The generations a rollback generation undoes."""
        rows = self.views.query(
            "SELECT number FROM generations WHERE env = ? AND rolled_back_by = ?",
            (env, rollback),
        )
        return [row["number"] for row in rows]

    def versions(self, build_ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self.views.read() as tx:
            for batch in batched(sorted(set(build_ids) - {""}), IN_LIST):
                found.update(
                    tx.tuples(
                        "SELECT build_id, version FROM builds "
                        f"WHERE build_id IN ({', '.join('?' * len(batch))})",
                        batch,
                    )
                )
        return found
