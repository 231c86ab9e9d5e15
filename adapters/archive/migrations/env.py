"""Alembic's environment for the archive's schema: run on the connection the caller gives
(:func:`surgedesk.adapters.archive.store.migrate`), or on ``sqlalchemy.url`` from the command
line (``alembic -x ... upgrade head``)."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from surgedesk.adapters.archive.store import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = engine_from_config(config.get_section(config.config_ini_section) or {},
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
