"""Shared building blocks of the schema: metadata, column helpers, index comments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    MetaData,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

SUBSYSTEMS = ("MOSAIC", "DAMN", "UCE", "SYSTEM")
PLANS = ("free", "pro", "enterprise")


def org_id_column(*, fk: bool = True) -> Column[Any]:
    """The tenant column every tenant row has.

    Raw telemetry tables take ``fk=False``: a foreign-key check per row would slow bulk
    COPY, and their ``org_id`` comes only from an authenticated ingest key anyway.
    """
    from sqlalchemy import ForeignKey

    args: list[Any] = [ForeignKey("orgs.id", ondelete="CASCADE")] if fk else []
    return Column("org_id", Uuid(as_uuid=True), *args, nullable=False)


def created_at() -> Column[Any]:
    """A ``created_at timestamptz NOT NULL DEFAULT now()`` column."""
    return Column(
        "created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")
    )


def ts(name: str, *, nullable: bool = False) -> Column[Any]:
    """A ``timestamptz`` column."""
    return Column(name, DateTime(timezone=True), nullable=nullable)


def jsonb(name: str, *, nullable: bool = False) -> Column[Any]:
    """A ``jsonb`` column, ``'{}'`` by default, for attributes we keep but do not map."""
    return Column(name, JSONB, nullable=nullable, server_default=text("'{}'::jsonb"))


def label(name: str, *, default: str = "") -> Column[Any]:
    """A ``text NOT NULL DEFAULT ''`` dimension: rollup keys cannot hold NULL."""
    return Column(name, Text, nullable=False, server_default=text(f"'{default}'"))


def counter(name: str) -> Column[Any]:
    """A ``bigint NOT NULL DEFAULT 0`` counter."""
    return Column(name, BigInteger, nullable=False, server_default=text("0"))


def indexed(name: str, *columns: Any, serves: str, **kwargs: Any) -> Index:
    """An index that names, in ``info['serves']``, the query it exists for.

    The migrations store that text as the index's ``COMMENT``; a test checks that every
    index in the database has one.
    """
    return Index(name, *columns, info={"serves": serves}, **kwargs)


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK expression: ``column IN ('a', 'b')``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"
