"""Fees and expenses paid to individual patients and carers (ABPI clause 30), checked against
the fair-market-value rate card (policies/rate_card.toml) and reported in aggregate."""
