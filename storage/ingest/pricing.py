"""LLM pricing: which price is in force for a call, and what the call cost. Pure logic.

Prices live in ``model_prices`` (USD per million tokens), versioned by ``effective_from``;
``storage/data/model_prices.csv`` is the table shipped with the package (its ``source``
column says where each figure comes from and as of when) and ``load_shipped_prices``
puts it in the database. Operators add rows (a newer ``effective_from``, or an org
override with ``org_id`` set) without a release.

Choosing a price for (org, provider, model, day): rows whose ``model_pattern`` (a regular
expression, matched case-insensitively against the whole model name) matches; an org's
own rows beat global ones; then the newest ``effective_from`` on or before the day (if
the call predates every row, the oldest row); then the longest pattern.

Cached tokens: the GenAI conventions say ``input_tokens`` includes cache reads and cache
creations (OpenAI style), so those are subtracted before pricing the uncached part. Some
instrumentations report them separately (Anthropic's API does): when the cache counts
exceed ``input_tokens`` they are taken as additional. A missing cache price falls back to
the input price.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, and_, insert, select

from storage.schema import model_prices

SHIPPED_PRICES = Path(__file__).parent.parent / "data" / "model_prices.csv"
PER_MTOK = Decimal(1_000_000)
PROVIDER_ALIASES = {
    "azure.ai.openai": "openai",
    "gcp.vertex_ai": "gcp.gemini",
    "gcp.gen_ai": "gcp.gemini",
    "google": "gcp.gemini",
    "gemini": "gcp.gemini",
}


@dataclass(frozen=True, slots=True)
class Price:
    """One row of ``model_prices``."""

    price_id: int | None
    org_id: uuid.UUID | None
    provider: str
    model_pattern: str
    effective_from: date
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None
    cache_creation_per_mtok: Decimal | None

    def matches(self, model: str) -> bool:
        """Whether this row's pattern matches the whole model name."""
        return _compiled(self.model_pattern).fullmatch(model) is not None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one LLM call."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error:
            compiled = re.compile(re.escape(pattern), re.IGNORECASE)
        _PATTERNS[pattern] = compiled
    return compiled


def normalize_provider(provider: str) -> str:
    """Maps provider names that share a price list to one (``azure.ai.openai`` → ``openai``)."""
    clean = provider.strip().lower()
    return PROVIDER_ALIASES.get(clean, clean)


def cost_usd(price: Price, usage: Usage) -> Decimal:
    """The cost of ``usage`` at ``price``, in USD."""
    cached = usage.cache_read_tokens + usage.cache_creation_tokens
    uncached = usage.input_tokens - cached if cached <= usage.input_tokens else usage.input_tokens
    read_price = (
        price.cache_read_per_mtok if price.cache_read_per_mtok is not None else price.input_per_mtok
    )
    creation_price = (
        price.cache_creation_per_mtok
        if price.cache_creation_per_mtok is not None
        else price.input_per_mtok
    )
    total = (
        uncached * price.input_per_mtok
        + usage.cache_read_tokens * read_price
        + usage.cache_creation_tokens * creation_price
        + usage.output_tokens * price.output_per_mtok
    )
    return total / PER_MTOK


class PriceBook:
    """All prices, indexed by provider, for fast lookups on the ingest path."""

    def __init__(self, prices: Iterable[Price]) -> None:
        self._by_provider: dict[str, list[Price]] = {}
        for price in prices:
            self._by_provider.setdefault(normalize_provider(price.provider), []).append(price)
        # Lookups repeat (few models, one day): remember answers. A book is rebuilt
        # whenever prices are reloaded, so the memo never outlives the rows it came from.
        self._memo: dict[tuple[uuid.UUID, str, str, date], Price | None] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_provider.values())

    def find(self, org_id: uuid.UUID, provider: str, model: str, day: date) -> Price | None:
        """The price in force for this call, or None if no row matches."""
        key = (org_id, provider, model, day)
        if key not in self._memo:
            if len(self._memo) > 100_000:
                self._memo.clear()
            self._memo[key] = self._find(org_id, provider, model, day)
        return self._memo[key]

    def _find(self, org_id: uuid.UUID, provider: str, model: str, day: date) -> Price | None:
        rows = self._by_provider.get(normalize_provider(provider))
        if rows is None and not provider.strip():
            rows = [p for ps in self._by_provider.values() for p in ps]
        candidates = [
            p for p in rows or () if (p.org_id is None or p.org_id == org_id) and p.matches(model)
        ]
        if not candidates:
            return None
        own = [p for p in candidates if p.org_id == org_id]
        pool = own or candidates
        in_force = [p for p in pool if p.effective_from <= day]
        if in_force:
            return max(in_force, key=lambda p: (p.effective_from, len(p.model_pattern)))
        return min(pool, key=lambda p: (p.effective_from, -len(p.model_pattern)))


def read_shipped_prices(path: Path = SHIPPED_PRICES) -> list[dict[str, object]]:
    """The rows of the shipped price table, typed for ``model_prices``."""
    rows: list[dict[str, object]] = []
    with path.open(newline="") as handle:
        for raw in csv.DictReader(handle):
            rows.append(
                {
                    "provider": raw["provider"],
                    "model_pattern": raw["model_pattern"],
                    "effective_from": date.fromisoformat(raw["effective_from"]),
                    "input_per_mtok": Decimal(raw["input_per_mtok"]),
                    "output_per_mtok": Decimal(raw["output_per_mtok"]),
                    "cache_read_per_mtok": Decimal(raw["cache_read_per_mtok"])
                    if raw["cache_read_per_mtok"]
                    else None,
                    "cache_creation_per_mtok": Decimal(raw["cache_creation_per_mtok"])
                    if raw["cache_creation_per_mtok"]
                    else None,
                    "source": raw["source"],
                }
            )
    return rows


def load_shipped_prices(conn: Connection) -> int:
    """Inserts shipped global prices that are not in the database yet; returns how many."""
    added = 0
    for row in read_shipped_prices():
        exists = conn.execute(
            select(model_prices.c.id).where(
                and_(
                    model_prices.c.org_id.is_(None),
                    model_prices.c.provider == row["provider"],
                    model_prices.c.model_pattern == row["model_pattern"],
                    model_prices.c.effective_from == row["effective_from"],
                )
            )
        ).first()
        if exists is None:
            conn.execute(insert(model_prices).values(**row))
            added += 1
    return added


def load_price_book(conn: Connection) -> PriceBook:
    """Every price row in the database (the caller's role must be able to read them)."""
    c = model_prices.c
    rows = conn.execute(
        select(
            c.id,
            c.org_id,
            c.provider,
            c.model_pattern,
            c.effective_from,
            c.input_per_mtok,
            c.output_per_mtok,
            c.cache_read_per_mtok,
            c.cache_creation_per_mtok,
        )
    ).all()
    return PriceBook(Price(*row) for row in rows)
