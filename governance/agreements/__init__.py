"""Written agreements behind support and payments (ABPI clause 27.3, EFPIA)."""
