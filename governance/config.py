"""Configuration layers: defaults, instance/config.py, GOVERNANCE_* variables, then tests."""

import json
import os
from datetime import timedelta
from pathlib import Path


class Defaults:
    SECRET_KEY = None
    # The audit chain's HMAC key (never in the database; audit.py) and the keys it replaced,
    # which still verify the events they signed; a periodic checkpoint every so many events.
    AUDIT_KEY = None
    AUDIT_PREVIOUS_KEYS: tuple = ()
    AUDIT_CHECKPOINT_EVERY = 1000
    SQLALCHEMY_DATABASE_URI = None  # filled from DATABASE_URL or the instance folder
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    SQLITE_BUSY_TIMEOUT_MS = 30_000
    POLICIES_DIR = None  # defaults to <project>/policies
    INVITATION_VALID_DAYS = 7  # how long an invitation link to a new account works
    DATA_DIR = None  # where uploaded and generated files live; defaults to the instance folder
    FILE_STORE = None  # where stored files are kept: "database" (PostgreSQL) or "folder"
    MAX_CONTENT_LENGTH = 60 * 1024 * 1024  # hard ceiling for any request body
    ATTACHMENT_MAX_BYTES = 20 * 1024 * 1024
    IMPORT_MAX_BYTES = 50 * 1024 * 1024  # a 100,000-row interaction file is about 37 MB
    IMPORT_IN_BACKGROUND_ROWS = 5_000  # a larger file is imported by the task worker
    WTF_CSRF_CHECK_DEFAULT = False  # CSRF is checked centrally in security.py
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = True
    # A session ends after this long without a request, and this long after its sign-in; "keep
    # me signed in" keeps a browser signed in this long after the sign-in instead (security.py).
    SESSION_IDLE_MINUTES = 30
    SESSION_ABSOLUTE_HOURS = 12
    REMEMBER_COOKIE_DURATION = timedelta(days=30)  # at most 30 days; seconds from the environment
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = True
    BOOTSTRAP_SERVE_LOCAL = True
    # Wrong passwords slow down, never lock (auth/throttle.py): free failures per account (and
    # per signed-in user re-entering a password) and per client address, then waits doubling
    # from 1 s to the longest wait; forgotten after a quiet spell.
    SIGN_IN_THROTTLE = True
    SIGN_IN_FREE_FAILURES = 5
    SIGN_IN_FREE_FAILURES_PER_ADDRESS = 20
    SIGN_IN_MAX_WAIT_SECONDS = 30
    SIGN_IN_FORGET_AFTER_MINUTES = 15
    # Two-step sign-in (auth/mfa.py): the roles that must use it, and the days from an account's
    # first sign-in it may go without; the name authenticator apps show beside the account.
    MFA_REQUIRED_ROLES = ("compliance", "admin")
    MFA_ENROLMENT_GRACE_DAYS = 7
    MFA_ISSUER = "Partnership Governance"
    # Reverse proxies in front of the application whose X-Forwarded-For and X-Forwarded-Proto
    # are trusted (0: none; the client address is the connection's).
    TRUSTED_PROXIES = 0
    # The address the site is reached at (scheme and host, e.g. https://governance.example.org):
    # absolute links in API answers and invitations are built on it. Without it they are built
    # on the request's Host, which must then be one of TRUSTED_HOSTS (others are answered 400);
    # PUBLIC_BASE_URL's host is always trusted.
    PUBLIC_BASE_URL = None
    TRUSTED_HOSTS = ("localhost", "127.0.0.1")  # any port
    PER_PAGE = 25
    # The task queue (governance/tasks.py): None is a SQLite file in DATA_DIR (one machine);
    # redis://HOST:PORT/DB when the application spans machines. TASK_WORKERS: the threads of a
    # `flask worker` process.
    TASK_QUEUE_URL = None
    TASK_WORKERS = 2
    # The day's run (governance/daily.py) starts from this hour (UTC); advocates are reminded
    # of a summary or feedback this many days before the documentation rules' deadline.
    DAILY_RUN_HOUR = 6
    DOCUMENTATION_REMINDER_DAYS = 7
    # Mail (flask-mailman): MAIL_SERVER, MAIL_PORT, MAIL_USERNAME, MAIL_PASSWORD, MAIL_USE_TLS,
    # MAIL_USE_SSL, MAIL_TIMEOUT; MAIL_BACKEND "file" writes each mail under MAIL_FILE_PATH
    # instead (what `make run` does: instance/outbox).
    MAIL_SERVER = "localhost"
    MAIL_PORT = 25
    MAIL_TIMEOUT = 30
    MAIL_DEFAULT_SENDER = "Partnership Governance <governance@localhost>"
    MAIL_BACKEND = None  # "smtp"; "file" in development
    JOBS_INLINE = False  # jobs and mail in the request instead of on the task queue
    # A running job writes its heartbeat this often; one whose heartbeat is older than
    # JOB_STALL_SECONDS lost its worker and is started again, up to JOB_MAX_ATTEMPTS times.
    JOB_HEARTBEAT_SECONDS = 5
    JOB_STALL_SECONDS = 30
    JOB_MAX_ATTEMPTS = 3


class ConfigurationError(ValueError):
    """A setting the application refuses to start with."""


def env_overrides(environ=os.environ) -> dict:
    """Read GOVERNANCE_* variables (JSON values where they parse) and DATABASE_URL."""
    values = {}
    for key, raw in environ.items():
        if not key.startswith("GOVERNANCE_"):
            continue
        try:
            values[key.removeprefix("GOVERNANCE_")] = json.loads(raw)
        except ValueError:
            values[key.removeprefix("GOVERNANCE_")] = raw
    if environ.get("DATABASE_URL"):
        values["SQLALCHEMY_DATABASE_URI"] = environ["DATABASE_URL"]
    return values


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
