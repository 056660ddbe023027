"""Alembic environment for the editbot schema.

Runs on the connection storage.migrate.upgrade() hands over in config.attributes["connection"], or, from the
`alembic` command line, on an engine built by storage.database.make_engine from sqlalchemy.url in alembic.ini or
else the EDITBOT_DATABASE_URL / EDITBOT_DATA_DIR settings.
"""

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from core.config import StorageSettings
from storage.database import make_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or StorageSettings().url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Write the SQL to stdout (alembic upgrade --sql) instead of running it."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
