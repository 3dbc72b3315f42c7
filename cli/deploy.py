"""deploy and rollback: plan a generation from what is active, record it, carry it out.

Both commands share one planner (``projections.planning``) and one executor
(``ledger.rollout``): a rollback is a deployment of an old generation's manifest.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import click

from cli import output
from cli.params import GENERATION, default_actor
from cli.session import Session, pass_session
from ledger.manifests import read_manifest
from ledger.rollout import Commands, Outcome, Rollout, StepResult, parse_parallel
from projections.planning import Plan, plan_deploy, plan_resume, plan_rollback, planned_event
from projections.runner import Views

F = TypeVar("F", bound=Callable[..., Any])
SHOWN_STEPS = 40
"""Plans with more steps than this are summarised unless --all is given."""


def rollout_options(command: F) -> F:
    """The options deploy and rollback share."""
    options = [
        click.option("--env", help="The environment (needed when the ledger has several)."),
        click.option("--dry-run", is_flag=True, help="Show the plan; record and run nothing."),
        click.option(
            "--resume",
            is_flag=True,
            help="Continue the env's latest generation where it stopped, without "
            "repeating finished steps.",
        ),
        click.option(
            "--execute",
            "template",
            metavar="TEMPLATE",
            help="Run each step through this shell command template: fields {host}, "
            "{service}, {build_id}, {artifact}, {step}, {env}, {generation}, {replaces}.",
        ),
        click.option(
            "--on",
            "per_kind",
            multiple=True,
            metavar="STEP=TEMPLATE",
            help="The command for one kind of step (distribute, activate, drain, "
            "deactivate), instead of --execute's.",
        ),
        click.option(
            "--parallel",
            multiple=True,
            metavar="STEP=N",
            help="At most N steps of a kind at once (defaults: distribute=16, activate=8, "
            "drain=8, deactivate=8).",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=600.0,
            show_default=True,
            help="Seconds a step's command may take.",
        ),
        click.option(
            "--drain-timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=300.0,
            show_default=True,
            help="Seconds a drain may take before it counts as timed out.",
        ),
        click.option("--force", is_flag=True, help="Deploy a manifest marked bad anyway."),
        click.option("--all", "show_all", is_flag=True, help="List every step of a large plan."),
        click.option("--actor", default=default_actor, show_default="user@host"),
        click.option("--json", "as_json", is_flag=True, help="JSON instead of tables."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@click.option(
    "--manifest",
    "manifest_file",
    metavar="FILE",
    help="The desired manifest: JSON entries (host, service, build_id, artifact, "
    "depends_on), or `ledger generation N --json` output; - reads stdin.",
)
@rollout_options
@pass_session
def deploy(session: Session, /, manifest_file: str | None, **options: Any) -> None:
    """Plan a new generation from a manifest, record it and (with --execute) carry it out.

    The plan goes from what is actually active (the topology), not from the last
    desired manifest: distribute missing closures, activate new builds (services others
    depend on first), then drain and deactivate what they replace (dependents first).
    A manifest equal to that of a generation marked bad (failed or rolled back) is
    refused without --force. Without --execute the generation is recorded and the steps
    are left to your own tooling; each step's outcome is an event either way.

    \b
    Example:
      ledger deploy --env production --manifest release.json --dry-run
      ledger deploy --env production --manifest release.json \\
        --execute 'ssh {host} nix-env -p /nix/var/nix/profiles/{service} --set {artifact}' \\
        --on distribute='nix-copy-closure --to {host} {artifact}'
      ledger deploy --env production --resume --execute '…'   # after a failure
    """
    views = _views(session)
    if options["resume"]:
        if manifest_file:
            raise click.UsageError("--resume continues the latest generation: drop --manifest")
        plan = plan_resume(views, options["env"])
    else:
        if not manifest_file:
            raise click.UsageError("give --manifest FILE (or --resume)")
        if not options["env"]:
            raise click.UsageError("give --env: the environment this manifest is for")
        plan = plan_deploy(
            views, options["env"], read_manifest(manifest_file), force=options["force"]
        )
    _carry_out(views, plan, "deploy", **options)


@click.command()
@click.option("--to", "to", type=GENERATION, help="The generation to go back to.")
@rollout_options
@pass_session
def rollback(session: Session, /, to: int | None, **options: Any) -> None:
    """Take an env back to generation N: a new generation with N's manifest.

    The new generation's parent is the current one, its reason "rollback" and its
    target N; recording it marks the generations it undoes as bad, so `deploy` refuses
    to apply them again. The steps are planned from what is actually active, as for
    `ledger deploy`, and --execute carries them out; after a failure, --resume
    continues without repeating what finished.

    \b
    Example:
      ledger rollback --env production --to 42 --dry-run
      ledger rollback --env production --to 42 \\
        --execute 'ssh {host} deploy-step {step} {service} {artifact}'
      ledger rollback --env production --resume --execute '…'
    """
    views = _views(session)
    if options["resume"]:
        if to is not None:
            raise click.UsageError("--resume continues the latest generation: drop --to")
        plan = plan_resume(views, options["env"])
    else:
        if to is None:
            raise click.UsageError("give --to N, the generation to go back to (or --resume)")
        plan = plan_rollback(views, options["env"], to, force=options["force"])
    _carry_out(views, plan, "rollback", **options)


def _views(session: Session) -> Views:
    """The views, caught up on any backend: a plan made from stale state would be wrong."""
    views = session.open_views()
    lag = views.lag()
    with output.progress_bar("updating views", lag if lag >= 5_000 else 0, unit="events") as bar:
        views.catch_up(bar)
    return views


def _carry_out(
    views: Views,
    plan: Plan,
    command: str,
    *,
    env: str | None,
    dry_run: bool,
    resume: bool,
    template: str | None,
    per_kind: tuple[str, ...],
    parallel: tuple[str, ...],
    timeout: float,
    drain_timeout: float,
    force: bool,
    show_all: bool,
    actor: str,
    as_json: bool,
) -> None:
    executing = template is not None or bool(per_kind)
    commands = Commands.parse(template, per_kind) if executing else None
    workers = parse_parallel(parallel)
    if commands is not None and (missing := commands.missing(plan.steps)):
        raise click.UsageError(
            f"no command for the {', '.join(missing)} steps: give --execute or --on STEP=…"
        )
    recorded = False
    if not dry_run and not plan.resumed:
        views.ledger.append([planned_event(plan, actor)], source="cli")
        recorded = True
    outcome = None
    if not dry_run and commands is not None:
        outcome = _execute(views, plan, commands, workers, timeout, drain_timeout, actor, as_json)
    if as_json:
        result = plan.as_json()
        result["recorded"] = recorded
        if commands is not None and dry_run:
            for row, step in zip(result["steps"], plan.steps, strict=True):
                row["command"] = commands.command(step, plan.env, plan.number)
        if outcome is not None:
            result["outcome"] = {
                "completed": outcome.completed,
                "steps_done": outcome.done,
                "not_started": outcome.not_started,
                "failed": outcome.failed.describe() if outcome.failed else None,
            }
        output.print_json(result)
    else:
        _show_plan(
            plan,
            commands if dry_run else None,
            show_all=show_all,
            recorded=recorded,
            waves=outcome is None,  # after a run, its outcome says what matters
        )
        if outcome is not None:
            _show_outcome(
                plan,
                outcome,
                f"ledger {command} --env {shlex.quote(plan.env)} --resume"
                + _again(template, per_kind, parallel),
            )
        elif recorded and plan.steps:
            output.console().print(
                f"Carry the steps out with your tooling, or: ledger {command} --env "
                f"{output.escape(plan.env)} --resume --execute 'TEMPLATE'"
            )
    if outcome is not None and not outcome.completed:
        raise click.exceptions.Exit(1)


def _execute(
    views: Views,
    plan: Plan,
    commands: Commands,
    workers: dict[Any, int],
    timeout: float,
    drain_timeout: float,
    actor: str,
    as_json: bool,
) -> Outcome:
    failures: list[StepResult] = []
    with output.progress_bar("steps", len(plan.steps), unit="steps") as advance:

        def on_step(result: StepResult) -> None:
            advance(1)
            if not result.ok:
                failures.append(result)

        rollout = Rollout(
            views.ledger,
            env=plan.env,
            generation=plan.number,
            commands=commands,
            actor=actor,
            parallel=workers,
            timeout=timeout,
            drain_timeout=drain_timeout,
            on_step=on_step,
        )
        outcome = rollout.run(plan.steps)
    views.catch_up()
    return outcome


def _show_plan(
    plan: Plan, commands: Commands | None, *, show_all: bool, recorded: bool, waves: bool
) -> None:
    show = output.console().print
    what = {
        "deploy": "Deployment",
        "rollback": f"Rollback to generation {plan.target}",
    }[plan.reason]
    state = "recorded" if recorded else "resumed" if plan.resumed else "not recorded (dry run)"
    placements = len(plan.manifest)
    show(
        f"[bold]{what} of {output.escape(plan.env)} as generation {plan.number}[/bold]"
        f"{f' (parent {plan.parent})' if plan.parent else ''}: {state}"
    )
    show(
        f"  {len(plan.steps)} steps (fewest possible: {plan.minimal()}); "
        f"{plan.unchanged} of {placements} placements already as desired"
    )
    if not plan.steps:
        show("[green]Nothing to do: every host already runs the desired builds.[/green]")
        return
    if not waves:
        return
    per_wave = Counter((s.wave, s.kind) for s in plan.steps)
    hosts: dict[int, set[str]] = {}
    services: dict[int, set[str]] = {}
    for step in plan.steps:
        hosts.setdefault(step.wave, set()).add(step.host)
        services.setdefault(step.wave, set()).add(step.service)
    output.rows_table(
        [
            {
                "wave": wave,
                "step": kind,
                "count": count,
                "hosts": len(hosts[wave]),
                "services": ", ".join(sorted(services[wave])),
            }
            for (wave, kind), count in sorted(per_wave.items())
        ],
        [
            ("wave", "wave"),
            ("step", "step"),
            ("count", "steps"),
            ("hosts", "hosts"),
            ("services", "services"),
        ],
        empty="",
    )
    if len(plan.steps) > SHOWN_STEPS and not show_all:
        show(f"[dim]{len(plan.steps)} steps: --all lists them, --json gives them to scripts[/dim]")
        return
    rows = [
        {
            "wave": s.wave,
            "step": s.kind,
            "host": s.host,
            "service": s.service,
            "build_id": s.build_id,
            "artifact": commands.command(s, plan.env, plan.number) if commands else s.artifact,
        }
        for s in plan.steps
    ]
    output.rows_table(
        rows,
        [
            ("wave", "wave"),
            ("step", "step"),
            ("host", "host"),
            ("service", "service"),
            ("build_id", "build"),
            ("artifact", "command" if commands else "artifact"),
        ],
        empty="",
    )


def _again(template: str | None, per_kind: tuple[str, ...], parallel: tuple[str, ...]) -> str:
    """The options that run the same commands again."""
    words = [*(["--execute", template] if template else [])]
    words += [word for item in per_kind for word in ("--on", item)]
    words += [word for item in parallel for word in ("--parallel", item)]
    return "".join(f" {shlex.quote(word)}" for word in words)


def _show_outcome(plan: Plan, outcome: Outcome, resume: str) -> None:
    show = output.console().print
    if outcome.completed:
        show(f"[green]Generation {plan.number} completed: {outcome.done} steps done.[/green]")
        return
    failed = outcome.failed.describe() if outcome.failed else "interrupted"
    show(
        f"[red]Generation {plan.number} failed[/red]: {output.escape(failed)}\n"
        f"  {outcome.done} steps done, {outcome.not_started} not started; the failure is "
        "recorded.\n"
        f"  Fix the cause, then continue without repeating finished steps:\n"
        f"    {output.escape(resume)}"
    )
    if plan.reason == "deploy" and plan.parent:
        show(f"  or go back: ledger rollback --env {output.escape(plan.env)} --to {plan.parent}")
