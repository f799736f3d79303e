"""User accounts administered in the application: list, create, invite, change, deactivate."""
