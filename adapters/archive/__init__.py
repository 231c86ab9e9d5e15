"""Ended tickets moved from Redis to a relational database (SQLite or PostgreSQL)."""
