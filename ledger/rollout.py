"""Carrying out a plan: each step through a command template, each outcome an event.

The ledger does not know how to copy a closure or switch a profile on your fleet; a
command template does (``ssh {host} nix-env -p /nix/var/nix/profiles/{service} --set
{artifact}``). Each step's fields are shell-quoted into the template and the command
runs through ``/bin/sh``. Steps of one wave run in parallel, at most ``parallel[kind]``
at once; a wave starts when the one before it has finished.

Every outcome is appended to the ledger as soon as it is known — the ledger is the
rollout's only state, so ``--resume`` re-plans from it and never repeats a step whose
success was recorded:

====================  ==========================  ================================
step                  success                     failure
====================  ==========================  ================================
distribute            distribution_completed      distribution_failed
activate              activation_completed        activation_failed (exit code, log)
drain                 drain_started, then         drain_timed_out (the command
                      drain_completed             failed or outlived its timeout)
deactivate            deactivated                 generation_failed names the step
====================  ==========================  ================================

On the first failure no new step starts; steps already running finish and are recorded,
then the generation is recorded as failed, with the failed step as its reason. A step
whose command succeeded but whose outcome could not be recorded (the process was
killed in between) runs again on resume: commands must be idempotent, as ``nix-env
--set`` and ``nix-copy-closure`` are.
"""

from __future__ import annotations

import re
import shlex
import string
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import TypeVar
from uuid import uuid4

from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.events import (
    ActivationCompleted,
    ActivationFailed,
    Deactivated,
    DistributionCompleted,
    DistributionFailed,
    DrainCompleted,
    DrainStarted,
    DrainTimedOut,
    Envelope,
    GenerationCompleted,
    GenerationFailed,
)
from ledger.planner import STEP_KINDS, Step, StepKind

E = TypeVar("E", bound=Envelope)

FIELDS = ("host", "service", "build_id", "artifact", "step", "env", "generation", "replaces")
DEFAULT_PARALLEL: Mapping[StepKind, int] = {
    "distribute": 16,
    "activate": 8,
    "drain": 8,
    "deactivate": 8,
}
LOG_EXCERPT = 64 * 1024
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Commands:
    """The command template of each step kind."""

    templates: Mapping[StepKind, str]

    @classmethod
    def parse(cls, default: str | None, per_kind: Sequence[str] = ()) -> Commands:
        """``default`` for every kind, overridden by ``KIND=TEMPLATE`` items. Refuses
        unknown kinds and fields before anything runs."""
        templates: dict[StepKind, str] = dict.fromkeys(STEP_KINDS, default) if default else {}
        for item in per_kind:
            kind, sep, template = item.partition("=")
            if not sep or kind not in STEP_KINDS:
                kinds = ", ".join(STEP_KINDS)
                raise InvalidInput(
                    f"--on {item!r}: expected KIND=TEMPLATE with KIND one of {kinds}"
                )
            templates[kind] = template
        for kind, template in templates.items():
            _check_template(kind, template)
        return cls(templates)

    def missing(self, steps: Sequence[Step]) -> list[StepKind]:
        return sorted({s.kind for s in steps} - set(self.templates))

    def command(self, step: Step, env: str, generation: int) -> str:
        values = {
            "host": step.host,
            "service": step.service,
            "build_id": step.build_id,
            "artifact": step.artifact or "",
            "step": step.kind,
            "env": env,
            "generation": str(generation),
            "replaces": step.replaces or "",
        }
        quoted = {name: shlex.quote(value) for name, value in values.items()}
        return self.templates[step.kind].format_map(quoted)


def _check_template(kind: str, template: str) -> None:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise InvalidInput(f"the {kind} command template is malformed: {error}") from None
    for name in names:
        if name not in FIELDS:
            raise InvalidInput(
                f"the {kind} command template uses {{{name}}}; "
                f"known fields: {', '.join('{' + f + '}' for f in FIELDS)}"
            )


MAX_PARALLEL = 10_000
"""More steps at once than any fleet runs: a bound, so a typo cannot ask for 10^20."""


def parse_parallel(items: Sequence[str]) -> dict[StepKind, int]:
    """``KIND=N`` items over the defaults."""
    parallel = dict(DEFAULT_PARALLEL)
    for item in items:
        kind, _, number = item.partition("=")
        if (
            kind not in STEP_KINDS
            or not (number.isascii() and number.isdigit())
            or not 1 <= int(number) <= MAX_PARALLEL
        ):
            raise InvalidInput(
                f"--parallel {item!r}: expected KIND=N with KIND one of "
                f"{', '.join(STEP_KINDS)} and N from 1 to {MAX_PARALLEL}"
            )
        parallel[kind] = int(number)
    return parallel


@dataclass(frozen=True)
class StepResult:
    step: Step
    ok: bool
    seconds: float
    exit_code: int | None = None
    output: str = ""
    timed_out: bool = False

    def describe(self) -> str:
        step = self.step
        what = f"{step.kind} {step.service} {step.build_id[:12]} on {step.host}"
        if self.ok:
            return f"{what}: done"
        why = (
            f"timed out after {self.seconds:.0f} s"
            if self.timed_out
            else f"exited with {self.exit_code}"
        )
        last = next((line for line in reversed(self.output.splitlines()) if line.strip()), "")
        return f"{what} {why}" + (f": {last.strip()[:200]}" if last else "")


@dataclass(frozen=True)
class Outcome:
    done: int
    """Steps that succeeded in this run."""
    failed: StepResult | None
    not_started: int
    interrupted: bool = False

    @property
    def completed(self) -> bool:
        return self.failed is None and not self.interrupted


class Rollout:
    """Runs the steps of one generation of one env and records what happens (once)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        env: str,
        generation: int,
        commands: Commands,
        actor: str,
        parallel: Mapping[StepKind, int] = DEFAULT_PARALLEL,
        timeout: float = 600.0,
        drain_timeout: float = 300.0,
        on_step: Callable[[StepResult], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.env = env
        self.generation = generation
        self.commands = commands
        self.actor = actor
        self.parallel = parallel
        self.timeout = timeout
        self.drain_timeout = drain_timeout
        self.on_step = on_step
        self._lock = threading.Lock()
        self._append_lock = threading.Lock()
        self._stop = threading.Event()
        # Counted by the steps' threads, so that steps finishing during an interrupt count.
        self._started = 0
        self._done = 0
        self._failed: StepResult | None = None

    def run(self, steps: Sequence[Step]) -> Outcome:
        """Run ``steps`` wave by wave; record the generation completed or failed."""
        if missing := self.commands.missing(steps):
            raise InvalidInput(f"no command template for the {', '.join(missing)} steps")
        try:
            for _, wave_steps in groupby(steps, key=lambda s: s.wave):
                wave = list(wave_steps)
                if self._stop.is_set():
                    break
                workers = max(1, min(self.parallel[wave[0].kind], len(wave)))
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    try:
                        list(pool.map(self._run_step, wave))
                    except KeyboardInterrupt:
                        self._stop.set()  # queued steps return at once; running ones finish
                        raise
        except KeyboardInterrupt:
            reason = f"interrupted by the operator after {self._done} of {len(steps)} steps"
            self._record(self._event(GenerationFailed, number=self.generation, reason=reason))
            return Outcome(self._done, self._failed, len(steps) - self._started, True)
        if self._failed is not None:
            done = f"{self._done} of {len(steps)} steps done in this run"
            reason = _text(f"{self._failed.describe()}; {done}")
            self._record(self._event(GenerationFailed, number=self.generation, reason=reason))
        else:
            self._record(self._event(GenerationCompleted, number=self.generation))
        return Outcome(self._done, self._failed, len(steps) - self._started)

    # --- one step ---------------------------------------------------------------------

    def _run_step(self, step: Step) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self._started += 1
        if step.kind == "drain":
            self._record(self._event(DrainStarted, **self._on(step)))
        timeout = self.drain_timeout if step.kind == "drain" else self.timeout
        result = self._execute(step, timeout)
        if not result.ok:
            self._stop.set()
        self._record_outcome(result)
        with self._lock:
            if result.ok:
                self._done += 1
            elif self._failed is None:
                self._failed = result
        if self.on_step is not None:
            self.on_step(result)

    def _execute(self, step: Step, timeout: float) -> StepResult:
        command = self.commands.command(step, self.env, self.generation)
        started = time.monotonic()
        try:
            process = subprocess.run(  # the operator's template is a shell command
                command,
                shell=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            return StepResult(
                step, False, time.monotonic() - started, None, _tail(expired.output), True
            )
        return StepResult(
            step,
            process.returncode == 0,
            time.monotonic() - started,
            process.returncode,
            _tail(process.stdout),
        )

    def _record_outcome(self, result: StepResult) -> None:
        step, seconds = result.step, round(result.seconds, 3)
        on = self._on(step)
        event: Envelope | None
        if step.kind == "distribute":
            event = (
                self._event(DistributionCompleted, **on, duration_s=seconds)
                if result.ok
                else self._event(DistributionFailed, **on, reason=_text(result.describe()))
            )
        elif step.kind == "activate":
            event = (
                self._event(
                    ActivationCompleted, **on, generation=self.generation, duration_s=seconds
                )
                if result.ok
                else self._event(
                    ActivationFailed,
                    **on,
                    generation=self.generation,
                    reason=_text(result.describe()),
                    exit_code=_exit_code(result.exit_code),
                    log_excerpt=_text(result.output, LOG_EXCERPT),
                )
            )
        elif step.kind == "drain":
            event = (
                self._event(DrainCompleted, **on, duration_s=seconds)
                if result.ok
                else self._event(DrainTimedOut, **on, timeout_s=self.drain_timeout)
            )
        else:  # deactivate: a failure is recorded as the generation's failure
            event = (
                self._event(Deactivated, **on, generation=self.generation) if result.ok else None
            )
        if event is not None:
            self._record(event)

    def _record(self, event: Envelope) -> None:
        with self._append_lock:  # one writer at a time: steps finish on several threads
            self.ledger.append([event], source="cli")

    def _event(self, kind: type[E], **fields: object) -> E:
        """An event of ``kind`` about now, by the rollout's actor."""
        envelope = {
            "event_id": uuid4(),
            "env": self.env,
            "occurred_at": datetime.now(UTC),
            "actor": self.actor,
        }
        return kind.model_validate({**envelope, **fields})

    @staticmethod
    def _on(step: Step) -> dict[str, str]:
        return {"host": step.host, "service": step.service, "build_id": step.build_id}


def _tail(output: bytes | str | None) -> str:
    """The last 64 KiB a command printed, as text."""
    if isinstance(output, str):
        return output[-LOG_EXCERPT:]
    return (output or b"")[-LOG_EXCERPT:].decode("utf-8", errors="replace")


def _text(value: str, limit: int = 8192) -> str:
    """The end of ``value``, without the control characters events refuse."""
    return _NOT_TEXT.sub("?", value)[-limit:]


def _exit_code(code: int | None) -> int | None:
    return code if code is not None and -255 <= code <= 255 else None
