"""Alembic environment of networking-l2pop's branch (run by neutron-db-manage)."""

from alembic import context
from neutron.db.migration.alembic_migrations import external
from neutron.db.migration.connection import DBConnection
from neutron.db.migration.models import head  # noqa: F401  (Neutron's models: foreign keys resolve)
from neutron_lib.db import model_base
from oslo_config import cfg
import sqlalchemy as sa
from sqlalchemy import event

from networking_l2pop.db import models  # noqa: F401  (our tables in the metadata)

VERSION_TABLE = "l2pop_alembic_version"
MYSQL_ENGINE = None

config = context.config
neutron_config = config.neutron_config
target_metadata = model_base.BASEV2.metadata


def set_mysql_engine():
    try:
        engine = neutron_config.command.mysql_engine
    except cfg.NoSuchOptError:
        engine = None
    global MYSQL_ENGINE
    MYSQL_ENGINE = engine or model_base.BASEV2.__table_args__["mysql_engine"]


def include_object(object_, name, type_, reflected, compare_to):
    return not (type_ == "table" and name in external.TABLES)


@event.listens_for(sa.Table, "after_parent_attach")
def set_storage_engine(target, parent):
    if MYSQL_ENGINE:
        target.kwargs["mysql_engine"] = MYSQL_ENGINE


def run_migrations_offline():
    set_mysql_engine()
    kwargs = {"include_object": include_object, "version_table": VERSION_TABLE}
    if neutron_config.database.connection:
        kwargs["url"] = neutron_config.database.connection
    else:
        kwargs["dialect_name"] = neutron_config.database.engine
    context.configure(**kwargs)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    set_mysql_engine()
    connection = config.attributes.get("connection")
    with DBConnection(neutron_config.database.connection, connection) as conn:
        context.configure(
            connection=conn,
            target_metadata=target_metadata,
            include_object=include_object,
            version_table=VERSION_TABLE,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
