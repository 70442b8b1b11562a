"""The units room's tables: administrative units, their links through time, the closure of
the tree (every ancestor/descendant pair), and the organs mapped to units."""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.sql.elements import conv

from ioc.db import NOW, TIMESTAMPTZ, metadata

units = Table(
    "units",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("level", Text, nullable=False),
    # Deferred: a province file loads children before or after their parent.
    Column("parent_code", Text,
           ForeignKey("units.code", deferrable=True, initially="DEFERRED")),
    Column("lat", Double),
    Column("lon", Double),
    Column("valid_from", Date),
    Column("valid_to", Date),
    Column("successor_code", Text,
           ForeignKey("units.code", deferrable=True, initially="DEFERRED")),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    CheckConstraint("code ~ '^[0-9]{2}([0-9]|[0-9]{3})?$'", name="code"),
    CheckConstraint("level IN ('province', 'district', 'commune')", name="level"),
    Index("ix_units_parent_code", "parent_code"),
)  # fmt: skip

unit_links = Table(
    "unit_links",
    metadata,
    Column("child_code", Text, ForeignKey("units.code", ondelete="CASCADE"), nullable=False),
    Column("parent_code", Text, ForeignKey("units.code", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("valid_from", Date),
    Column("valid_to", Date),
    Column("is_default", Boolean, nullable=False, server_default=text("true")),
    CheckConstraint("kind IN ('parent', 'successor')", name="kind"),
    CheckConstraint("child_code <> parent_code", name=conv("ck_unit_links_not_self")),
    PrimaryKeyConstraint("child_code", "parent_code", "kind", name="pk_unit_links"),
)

unit_closure = Table(
    "unit_closure",
    metadata,
    Column("ancestor_code", Text, nullable=False),
    Column("descendant_code", Text, nullable=False),
    Column("depth", Integer, nullable=False),
    PrimaryKeyConstraint("ancestor_code", "descendant_code", name="pk_unit_closure"),
    Index("ix_unit_closure_descendant", "descendant_code", "ancestor_code"),
)

organs = Table(
    "organs",
    metadata,
    Column("organ_id", Text, primary_key=True),
    Column("unit_code", Text, ForeignKey("units.code"), nullable=False),
    Column("name", Text, nullable=False, server_default=text("''")),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
)
