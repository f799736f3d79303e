"""Running the application in production: health, database failures, backups, PostgreSQL roles."""
