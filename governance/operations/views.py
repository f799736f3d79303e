"""The health check, and the operators' commands: backup, restore, grant-app-role."""

import click
from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy.exc import DBAPIError

from ..extensions import db
from ..permissions import public
from . import failures, inputs
from .backup import BackupError, Counts, backup, restore
from .health import probe_writes
from .postgres import RoleError, grant_application_role

bp = Blueprint("operations", __name__)


PROBLEMS = {failures.READ_ONLY: "read-only", failures.DISK_FULL: "disk-full",
            failures.UNAVAILABLE: "unavailable", failures.BUSY: "busy"}
UNEXPECTED = "The database refused the health check's write; the application's log says why."


@bp.route("/health")
@public
def health():
    """For load balancers and process supervisors: 200 when the database takes a write (the
    probe commits one), 503 saying what failed, and whether retrying helps, when it does not."""
    database = db.engine.dialect.name
    try:
        probe_writes()
    except DBAPIError as error:
        db.session.rollback()
        message = failures.explain(error)
        if message is None:
            current_app.logger.error("the health check's write failed: %s", error.orig)
        retry_after = failures.RETRY_AFTER.get(message)
        response = jsonify({"status": "unavailable", "database": database, "writes": "failed",
                            "problem": PROBLEMS.get(message, "error"),
                            "retry_helps": retry_after is not None,
                            "message": message or UNEXPECTED})
        response.status_code = 503
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response
    return jsonify({"status": "ok", "database": database, "writes": "ok"})


def describe_counts(counts: Counts) -> str:
    return (f"{counts.records} records in {len(counts.tables)} tables, {counts.files} stored "
            f"files, {counts.audit_events} audit events")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def backup_command(path, force):
    """Write the database and every stored file to one archive at PATH (the app may keep
    running)."""
    try:
        result = backup(path, overwrite=force)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Backup written to {result.path} ({result.size} bytes): "
               f"{describe_counts(result.counts)}.")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True,
              help="Replace the records the database already holds with the backup's.")
def restore_command(path, force):
    """Replace the database and stored files with the backup at PATH, after checking every
    file against its SHA-256, then verify the audit chain."""
    try:
        result = restore(path, force=force)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    if not result.holds_files:
        click.echo(f"Warning: {path} is a backup of the database alone (the older kind): it "
                   "holds no report files, attachments or uploads, so downloads of files this "
                   "instance does not already hold will fail.", err=True)
    click.echo(f"Restored {path}: {describe_counts(result.counts)}.")
    if result.expected is not None and result.expected.tables != result.counts.tables:
        click.echo(f"Warning: the backup's manifest lists {describe_counts(result.expected)}; "
                   "the database now holds a different number (did something write to it "
                   "during the restore?).", err=True)
    if db.engine.dialect.name == "postgresql":
        click.echo("If the application connects as a separate role, grant it its privileges "
                   "again: flask --app governance grant-app-role ROLE")
    if result.chain.intact:
        click.echo(f"Audit chain intact: {result.chain.events_checked} events verified.")
        return
    click.echo(f"Audit chain BROKEN at event {result.chain.broken_at}: {result.chain.problem} "
               f"({result.chain.events_checked} events verified before it). "
               "Do not use this backup as the record of truth.", err=True)
    raise SystemExit(1)


@click.command("grant-app-role")
@click.argument("role")
def grant_app_role_command(role):
    """PostgreSQL: let ROLE read and write records, but never rewrite audit events."""
    try:
        statements = grant_application_role(role)
    except RoleError as error:
        raise click.ClickException(str(error)) from None
    for statement in statements:
        click.echo(statement + ";")
    click.echo(f"{role} may now run the application; it cannot UPDATE, DELETE or TRUNCATE "
               "audit events. Run this again after every migration.")


def init_app(app: Flask) -> None:
    failures.init_app(app)
    inputs.init_app(app)
    for command in (backup_command, restore_command, grant_app_role_command):
        app.cli.add_command(command)
