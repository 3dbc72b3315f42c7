"""The verifiable log over HTTP: the latest signed checkpoint and RFC 9162 proofs, and
the receipts ``POST /api/events?receipt=true`` answers.

Proofs are made only against checkpoints the ledger kept (``ledger checkpoint``, or a
receipt): a size nobody signed is a 404 naming it, since a proof is worth only the
signature on the root it leads to. The answers are those of ``ledger prove`` (hashes in
lowercase hex, the signed notes in full), which ``ledger verify-proof`` checks with the
public key alone. Never cached: a checkpoint kept meanwhile changes "the latest".
"""

from collections.abc import Callable, Sequence
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, FastAPI, Query

from api.app import ApiError, Kit
from api.models import CheckpointAnswer, ConsistencyAnswer, InclusionAnswer
from api.params import MAX_NUMBER, WholeNumber
from api.tokens import Token
from ledger.application import Appended, Ledger
from ledger.errors import InvalidInput, LedgerError

Size = Annotated[int, WholeNumber, Query(ge=1, le=MAX_NUMBER, description="A tree size.")]
KeptSize = Annotated[
    int | None,
    WholeNumber,
    Query(ge=1, le=MAX_NUMBER, description="A kept checkpoint's size; default: the latest."),
]
NO_CHECKPOINT = "no checkpoint was made yet: run `ledger checkpoint` (or POST with ?receipt=true)"


def add_routes(app: FastAPI, kit: Kit) -> None:
    """Add this module's routes to ``app``."""
    from ledger import checkpoints

    Reader = Annotated[Token, Depends(kit.reader)]

    def ledger() -> Ledger:
        return kit.views.ledger

    def kept(size: int) -> str:
        note = checkpoints.at_size(ledger(), size)
        if note is None:
            raise ApiError(404, f"no checkpoint of size {size} was kept")
        return note

    def newest() -> str:
        note = checkpoints.latest(ledger())
        if note is None:
            raise ApiError(404, NO_CHECKPOINT)
        return note

    @app.get("/api/checkpoint", response_model=CheckpointAnswer, tags=["proofs"])
    def checkpoint(_: Reader) -> dict[str, Any]:
        """The latest checkpoint kept: the tree size and root, signed."""
        note = newest()
        parsed = checkpoints.parse_unverified(note)
        return {"origin": parsed.origin, "size": parsed.size, "root": parsed.root.hex(),
                "note": note}  # fmt: skip

    @app.get("/api/proof/inclusion", response_model=InclusionAnswer, tags=["proofs"])
    def inclusion(
        _: Reader,
        position: Annotated[
            int | None,
            WholeNumber,
            Query(ge=1, le=MAX_NUMBER, description="The event's position (or event_id)."),
        ] = None,
        event_id: Annotated[UUID | None, Query(description="The event's id.")] = None,
        size: KeptSize = None,
    ) -> dict[str, Any]:
        """The inclusion proof of one event (by position or event_id) in the tree of a
        kept checkpoint: the latest, or the one of ``size``."""
        if (position is None) == (event_id is None):
            raise ApiError(422, "give either position or event_id")
        if event_id is not None:
            found = ledger().stored([event_id])
            if event_id not in found:
                raise ApiError(404, f"event {event_id} is not in this ledger")
            position = found[event_id]
        assert position is not None
        note = kept(size) if size is not None else newest()
        return _answer(lambda: checkpoints.inclusion_answer(ledger(), position, note))

    @app.get("/api/proof/consistency", response_model=ConsistencyAnswer, tags=["proofs"])
    def consistency(
        _: Reader,
        old: Size,
        new: KeptSize = None,
    ) -> dict[str, Any]:
        """The consistency proof from the kept checkpoint of size ``old`` to that of
        ``new`` (default: the latest): the newer tree extends the older."""
        old_note = kept(old)
        new_note = kept(new) if new is not None else newest()
        return _answer(lambda: checkpoints.consistency_answer(ledger(), old_note, new_note))


def _answer(make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A proof answer; a ledger that no longer matches its own checkpoint is a 409, a
    position the checkpoint does not cover a 404."""
    from ledger.checkpoints import CheckpointConflict

    try:
        return make()
    except CheckpointConflict as error:
        raise ApiError(409, str(error)) from None
    except InvalidInput as error:
        raise ApiError(404, str(error)) from None


def receipts(ledger: Ledger, results: Sequence[Appended]) -> dict[str, Any]:
    """What ``POST /api/events?receipt=true`` adds to its answer: per event (stored now or
    before), its inclusion proof against a checkpoint signed now with the server's key
    (``LEDGER_CHECKPOINT_KEY``); without a key, ``receipts`` is null and
    ``receipt_problem`` says why, the events being stored all the same."""
    from ledger.checkpoint import load_signer
    from ledger.checkpoints import inclusion_answers, issue

    try:
        signer = load_signer()
    except InvalidInput as error:
        return {"receipts": None, "receipt_problem": f"this server cannot sign: {error}"}
    try:
        note = issue(ledger, signer)
        answers = inclusion_answers(ledger, [r.position for r in results], note)
        proofs = [
            {"event_id": str(r.event_id), **answer}
            for r, answer in zip(results, answers, strict=True)
        ]
    except LedgerError as error:
        return {"receipts": None, "receipt_problem": f"no receipt could be made: {error}"}
    return {"receipts": proofs, "receipt_problem": None}
