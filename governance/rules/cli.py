"""Commands: check the policy files, and re-evaluate every record under the policy on disk.

`check-policies` is also registered as a Flask CLI plugin (pyproject entry point), so it runs
even when the application refuses to start because the policy set is invalid.
"""

from pathlib import Path

import click
from flask import current_app


def configured_policies_dir() -> str:
    """Return POLICIES_DIR as the application would configure it, without building the app."""
    if current_app:
        return current_app.config["POLICIES_DIR"]
    from flask import Config

    from ..config import Defaults, env_overrides, project_root

    root = project_root()
    config = Config(str(root / "instance"))
    config.from_object(Defaults)
    config.from_pyfile("config.py", silent=True)
    config.update(env_overrides())
    return config.get("POLICIES_DIR") or str(root / "policies")


def check_policy_files(directory: str | Path) -> tuple[list[str], list[str]]:
    """Return (problems, confirmations) for every policy file of the directory."""
    from .engine import POLICY_FILE, check_policies_dir

    problems, confirmations = [], []
    compiled, rule_problems = check_policies_dir(directory)
    problems.extend(str(problem) for problem in rule_problems)
    if compiled is not None:
        policy = compiled.policy
        confirmations.append(
            f"{Path(directory) / POLICY_FILE}: policy v{policy.version} “{policy.title}”, "
            f"effective {policy.effective_from.isoformat()}, {len(policy.rules)} rules — valid."
        )
    from ..activities.catalogue import CATALOGUE_FILE, check_catalogue

    path = Path(directory) / CATALOGUE_FILE
    catalogue_problems = check_catalogue(path)
    problems.extend(f"{path}: {problem}" for problem in catalogue_problems)
    if not catalogue_problems:
        confirmations.append(f"{path}: valid.")
    # The fair-market-value rate card of individual payments (governance/payments).
    from ..payments.ratecard import check_rate_card_dir

    card, card_problems = check_rate_card_dir(directory)
    problems.extend(card_problems)
    if card is not None:
        confirmations.append(f"{card.source}: rate card v{card.version}, "
                             f"{len(card.rates)} rates — valid.")
    return problems, confirmations


@click.command("check-policies")
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="Check this directory instead of the configured POLICIES_DIR.")
def check_policies_command(directory):
    """Validate the policy files; print one line per problem and exit non-zero if any."""
    directory = directory or configured_policies_dir()
    problems, confirmations = check_policy_files(directory)
    for line in confirmations:
        click.echo(line)
    for line in problems:
        click.echo(line, err=True)
    if problems:
        click.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found; the "
                   "application will not start until they are fixed.", err=True)
        raise SystemExit(1)


@click.command("reevaluate")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(100, 100_000),
              help="Interactions loaded and written per batch.")
def reevaluate_command(batch_size):
    """Re-evaluate every interaction and partnership under the policy on disk."""
    import time

    from ..extensions import db
    from .bulk import gc_paused, reevaluate_all
    from .engine import PolicyError

    started = time.perf_counter()
    try:
        with gc_paused():
            result = reevaluate_all(batch_size=batch_size)
    except PolicyError as error:
        db.session.rollback()
        for problem in error.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(1) from None
    db.session.commit()
    click.echo(f"{result.summary()} ({time.perf_counter() - started:.1f} s)")
