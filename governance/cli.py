"""Command-line tools: accounts, tokens, demo data and the task worker."""

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import select

from .database import utcnow
from .errors import ValidationFailed
from .extensions import db
from .vocabulary import ROLES


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(list(ROLES)))
@click.option("--password", required=True)
@click.option("--organisation", default=None, help="Name of the user's organisation.")
@click.option("--name", default=None, help="Display name (defaults to the email's local part).")
def create_user_command(email, role, password, organisation, name):
    """Create a user with a role."""
    from .auth.services import create_user

    try:
        user = create_user(email, name, role, password, organisation)
    except ValidationFailed as error:
        db.session.rollback()
        for field, messages in error.fields.items():
            click.echo(f"{field}: {' '.join(messages)}", err=True)
        raise SystemExit(1) from None
    db.session.commit()
    click.echo(f"Created {user.role} {user.email} (id {user.id}).")


@click.command("create-token")
@with_appcontext
@click.argument("email")
@click.option("--name", default="command line", help="What the token is for.")
@click.option("--days", type=click.IntRange(1, 365), default=90, show_default=True,
              help="Days until the token expires (at most a year).")
def create_token_command(email, name, days):
    """Print a new API token for the user, alone on the last line."""
    from .auth.services import find_user, issue_token

    user = find_user(email)
    if user is None or not user.is_active:
        click.echo(f"No active user with email {email}.", err=True)
        raise SystemExit(1)
    token = issue_token(user, name, days)
    db.session.commit()
    click.echo(f"API token for {user.email} (only its hash is stored; keep it safe):")
    click.echo(token)


@click.command("reset-mfa")
@with_appcontext
@click.argument("email")
def reset_mfa_command(email):
    """Reset a user's two-step sign-in: they set it up again at their next sign-in."""
    from .audit import Actor
    from .auth.mfa import switch_off
    from .auth.services import find_user

    user = find_user(email)
    if user is None:
        click.echo(f"No user with email {email}.", err=True)
        raise SystemExit(1)
    switch_off(user, Actor(None, "command line"), "Two-step sign-in reset on the command line",
               enrol_again=True)
    db.session.commit()
    click.echo(f"Two-step sign-in of {user.email} reset: they set it up again at their next "
               "sign-in.")


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Load the demo data set (skipped if the database already has organisations)."""
    from .demo import publish_demo_reports, seed_demo
    from .organisations.models import Organisation

    if db.session.scalar(select(Organisation.id).limit(1)) is not None:
        click.echo("The database already holds data; demo data not loaded.")
        return
    summary = seed_demo()
    db.session.commit()
    click.echo("Demo data loaded: " + ", ".join(f"{n} {k}" for k, n in summary.items()) + ".")
    click.echo("Publishing last year's demo reports (a minute: each is laid out as a PDF)…")
    for report in publish_demo_reports():
        click.echo(f"  {report.organisation.name}: {report} "
                   + ("published." if report.is_published else f"not published: {report.error}"))
    click.echo("Doing today's run: the reminders and notices of the day…")
    from . import daily

    run_id = daily.the_days_run(utcnow().date())
    daily.run_job(run_id)
    click.echo(f"  {db.session.get(daily.DailyRun, run_id, populate_existing=True).summary}")


@click.command("worker")
@with_appcontext
@click.option("--threads", type=click.IntRange(1, 64), default=None,
              help="Tasks run at once (default: TASK_WORKERS, 2).")
def worker_command(threads):
    """Run the task queue's worker: report jobs, re-evaluations, mail, the daily run."""
    from flask import current_app

    from .tasks import queue_url, run_worker

    app = current_app._get_current_object()
    count = threads or app.config["TASK_WORKERS"]
    click.echo(f"Task worker: {count} thread(s) on {_without_password(queue_url(app.config))}")
    run_worker(app, count)


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return url if url.startswith("sqlite") else make_url(url).render_as_string()


def init_app(app: Flask) -> None:
    from .daily import daily_run_command

    for command in (create_user_command, create_token_command, reset_mfa_command,
                    seed_demo_command, worker_command, daily_run_command):
        app.cli.add_command(command)
