"""Configuration layers: defaults, instance/config.py, GOVERNANCE_* variables, then tests."""

import json
import os
from pathlib import Path


class Defaults:
    SECRET_KEY = None
    SQLALCHEMY_DATABASE_URI = None  # filled from DATABASE_URL or the instance folder
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    SQLITE_BUSY_TIMEOUT_MS = 30_000
    POLICIES_DIR = None  # defaults to <project>/policies
    INVITATION_VALID_DAYS = 7  # how long an invitation link to a new account works
    DATA_DIR = None  # where uploaded and generated files live; defaults to the instance folder
    MAX_CONTENT_LENGTH = 60 * 1024 * 1024  # hard ceiling for any request body
    ATTACHMENT_MAX_BYTES = 20 * 1024 * 1024
    IMPORT_MAX_BYTES = 50 * 1024 * 1024  # a 100,000-row interaction file is about 37 MB
    WTF_CSRF_CHECK_DEFAULT = False  # CSRF is checked centrally in security.py
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = True
    BOOTSTRAP_SERVE_LOCAL = True
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    LOGIN_RATE_LIMIT = "20 per minute"
    LOGIN_MAX_FAILURES = 5
    LOGIN_LOCK_MINUTES = 15
    PER_PAGE = 25
    JOBS_INLINE = False  # report and re-evaluation jobs in the request instead of a thread
    # A running job writes its heartbeat this often; one whose heartbeat is older than
    # JOB_STALL_SECONDS lost its worker and is started again, up to JOB_MAX_ATTEMPTS times.
    JOB_HEARTBEAT_SECONDS = 5
    JOB_STALL_SECONDS = 30
    JOB_MAX_ATTEMPTS = 3


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
