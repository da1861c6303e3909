"""All tables, one module per area, sharing one MetaData.

Core SQLAlchemy tables, not ORM classes: repositories map rows to domain dataclasses, so no class
is both a table and an API schema.
"""

from postroom.storage.tables import core as core
from postroom.storage.tables import inbox as inbox
from postroom.storage.tables import outbox as outbox
from postroom.storage.tables.base import metadata as metadata

__all__ = ["core", "inbox", "metadata", "outbox"]
