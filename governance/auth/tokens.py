"""API tokens are stored only as their hash."""

import hashlib


def hash_token(token: str) -> str:
    """Return the hash an API token is stored and looked up by."""
    return hashlib.sha256(token.encode()).hexdigest()
