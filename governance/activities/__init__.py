"""Engagement activities (the CTTI catalogue and organisations' own) and prioritisation."""
