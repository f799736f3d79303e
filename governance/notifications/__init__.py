"""Notifications: an inbox per user, and mail (one at a time or a daily digest)."""
