"""The archive schema's Alembic migrations."""
