"""The demo's simulated world: organisations, their agents, and the LLMs they call.

Pure data, no I/O. Every org gets one fleet of agents in three roles (see
:func:`build_orgs`): a MOSAIC orchestrator that receives and routes tasks, a UCE context
engine, and DAMN worker agents that do the work. "A couple" of workers misbehave (a bad
canary release: many errors, slow calls, ``degraded`` heartbeats) and, with two orgs or
more, the last org runs over budget (large contexts on the most expensive models).

Every model here matches a row of ``storage/data/model_prices.csv``, so each call is
priced; the response models carry the dated version suffixes the providers return.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from semconv.attributes.aeos import AeosSubsystemValues

__all__ = [
    "EXPENSIVE",
    "MODELS",
    "NORMAL",
    "Agent",
    "Model",
    "Org",
    "OrgProfile",
    "Role",
    "build_orgs",
]

RELEASE: Final = "2.4.1"
OLD_RELEASE: Final = "2.3.7"  # a straggler, so that version skew shows
CANARY_RELEASE: Final = "2.5.0-rc.1"  # what the misbehaving agents run
MISBEHAVING_AGENTS: Final = 2
# Fleet tags per org: region-like and short, so agent ids are unique across orgs.
REGIONS: Final = ("euw1", "use1", "apse2", "usw2", "euc1", "sae1")
WORKER_NAMES: Final = (
    "researcher", "triage", "coder", "billing-support", "writer",
    "reviewer", "analyst", "translator", "planner", "qa",
)  # fmt: skip


class Role(StrEnum):
    """What an agent does in a task run."""

    ORCHESTRATOR = "orchestrator"
    CONTEXT_ENGINE = "context-engine"
    WORKER = "worker"


@dataclass(frozen=True, slots=True)
class Agent:
    """One simulated agent (one OpenTelemetry resource)."""

    agent_id: str
    name: str
    role: Role
    subsystem: str
    fleet_id: str
    version: str
    capacity: int
    queue: str | None
    misbehaving: bool = False


@dataclass(frozen=True, slots=True)
class Model:
    """An LLM as the demo calls it: typical sizes and speed.

    Attributes:
        provider: ``gen_ai.provider.name`` (as in the price table).
        model: ``gen_ai.request.model``.
        response_model: ``gen_ai.response.model`` (the dated version that answers).
        input_tokens: Median prompt size at context scale 1.
        output_tokens: Median answer size.
        tokens_per_s: Output speed, queueing included (sets the median latency).
        operation: ``gen_ai.operation.name``.
        cache_creation: Whether the provider reports cache writes (Anthropic does).
        reasoning: Whether part of the output is reasoning tokens.
    """

    provider: str
    model: str
    response_model: str
    input_tokens: int
    output_tokens: int
    tokens_per_s: float
    operation: str = "chat"
    cache_creation: bool = False
    reasoning: bool = False


_MODELS: Final = (
    Model("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 2500, 350, 190.0),
    Model("openai", "gpt-4o", "gpt-4o-2024-08-06", 4000, 500, 140.0),
    Model("openai", "gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", 3000, 400, 185.0),
    Model("openai", "gpt-4.1", "gpt-4.1-2025-04-14", 6000, 700, 150.0),
    Model("openai", "o3", "o3-2025-04-16", 5000, 1800, 155.0, reasoning=True),
    Model("openai", "text-embedding-3-small", "text-embedding-3-small", 800, 0, 1.0, "embeddings"),
    Model(
        "anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001", 3000, 400, 215.0,
        cache_creation=True,
    ),
    Model(
        "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", 6000, 700, 125.0,
        cache_creation=True,
    ),
    Model(
        "anthropic", "claude-opus-4-1", "claude-opus-4-1-20250805", 8000, 900, 105.0,
        cache_creation=True,
    ),
    Model("gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash", 3500, 450, 270.0),
    Model("gcp.gemini", "gemini-2.5-pro", "gemini-2.5-pro", 7000, 900, 118.0, reasoning=True),
)  # fmt: skip
MODELS: Final = {m.model: m for m in _MODELS}


@dataclass(frozen=True, slots=True)
class OrgProfile:
    """How an org uses LLMs.

    Attributes:
        mix: (model, weight) pairs a call's model is drawn from.
        context_scale: Multiplies prompt sizes and UCE context sizes.
        llm_calls: Weights of 1, 2, 3 and 4 LLM calls per task run.
    """

    mix: tuple[tuple[str, int], ...]
    context_scale: float
    llm_calls: tuple[int, int, int, int]


NORMAL: Final = OrgProfile(
    mix=(
        ("gpt-4o-mini", 24), ("claude-haiku-4-5", 14), ("gemini-2.5-flash", 14),
        ("gpt-4.1-mini", 10), ("claude-sonnet-4-5", 14), ("gpt-4o", 10),
        ("gemini-2.5-pro", 5), ("text-embedding-3-small", 9),
    ),
    context_scale=1.0,
    llm_calls=(35, 35, 20, 10),
)  # fmt: skip
# The over-budget org: long-context calls on the most expensive models, more per run.
EXPENSIVE: Final = OrgProfile(
    mix=(
        ("claude-opus-4-1", 40), ("o3", 15), ("gpt-4.1", 15),
        ("claude-sonnet-4-5", 15), ("gemini-2.5-pro", 15),
    ),
    context_scale=10.0,
    llm_calls=(5, 20, 35, 40),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Org:
    """One org of the demo: its fleet and how it behaves."""

    index: int
    fleet_id: str
    agents: tuple[Agent, ...]
    over_budget: bool

    @property
    def profile(self) -> OrgProfile:
        """The org's LLM usage profile."""
        return EXPENSIVE if self.over_budget else NORMAL

    @property
    def orchestrator(self) -> Agent:
        """The agent that receives, routes and hands off tasks (the first one)."""
        return self.agents[0]

    @property
    def context_engine(self) -> Agent | None:
        """The UCE agent, if the fleet is large enough to have one."""
        found = [a for a in self.agents if a.role is Role.CONTEXT_ENGINE]
        return found[0] if found else None

    @property
    def workers(self) -> tuple[Agent, ...]:
        """The agents that do the work; the orchestrator alone when there are none."""
        found = tuple(a for a in self.agents if a.role is Role.WORKER)
        return found or (self.orchestrator,)


def build_orgs(n_orgs: int, agents_per_org: int) -> tuple[Org, ...]:
    """The orgs of the demo, each with ``agents_per_org`` agents.

    Roles: one agent is an orchestrator (MOSAIC); two are orchestrator and worker (DAMN);
    three or more add a context engine (UCE) after the orchestrator. The last org is
    over budget when there are at least two. Misbehaving workers: see
    :func:`_misbehaving`.
    """
    if n_orgs < 1 or agents_per_org < 1:
        raise ValueError("the demo needs at least one org and one agent per org")
    slots = [[_role(i, agents_per_org) for i in range(agents_per_org)] for _ in range(n_orgs)]
    bad = _misbehaving(slots)
    return tuple(
        Org(
            index=o,
            fleet_id=f"fleet-{_tag(o)}",
            agents=tuple(_agent(o, i, role, (o, i) in bad) for i, role in enumerate(roles)),
            over_budget=n_orgs >= 2 and o == n_orgs - 1,
        )
        for o, roles in enumerate(slots)
    )


def _tag(org: int) -> str:
    region = REGIONS[org % len(REGIONS)]
    return region if org < len(REGIONS) else f"{region}{org // len(REGIONS)}"


def _role(slot: int, n: int) -> Role:
    if slot == 0:
        return Role.ORCHESTRATOR
    if slot == 1 and n >= 3:
        return Role.CONTEXT_ENGINE
    return Role.WORKER


def _misbehaving(slots: list[list[Role]]) -> set[tuple[int, int]]:
    """``MISBEHAVING_AGENTS`` workers, spread over the orgs, last workers first.

    An org keeps at least one healthy worker when it has two or more.
    """
    workers = [[i for i, r in enumerate(roles) if r is Role.WORKER] for roles in slots]
    depth = max(len(w) for w in workers)
    candidates = [
        (o, ws[-1 - k]) for k in range(depth) for o, ws in enumerate(workers) if k < len(ws)
    ]
    chosen: set[tuple[int, int]] = set()
    for org, slot in candidates:
        taken = sum(1 for o, _ in chosen if o == org)
        if len(chosen) < MISBEHAVING_AGENTS and (taken + 1 < len(workers[org]) or taken == 0):
            chosen.add((org, slot))
    return chosen


def _agent(org: int, slot: int, role: Role, misbehaving: bool) -> Agent:
    tag = _tag(org)
    if role is Role.ORCHESTRATOR:
        name, subsystem, capacity, queue = "mosaic-orchestrator", "MOSAIC", 32, "tasks"
    elif role is Role.CONTEXT_ENGINE:
        name, subsystem, capacity, queue = "uce-context-engine", "UCE", 64, None
    else:
        base = WORKER_NAMES[(slot - 1) % len(WORKER_NAMES)]
        name, subsystem, capacity = base, "DAMN", 4
        queue = "gpu" if base in ("coder", "analyst") else "default"
    version = CANARY_RELEASE if misbehaving else RELEASE
    if not misbehaving and slot % 5 == 4:
        version = OLD_RELEASE
    return Agent(
        agent_id=f"{tag}-{name}-{slot:02d}",
        name=name,
        role=role,
        subsystem=AeosSubsystemValues(subsystem).value,
        fleet_id=f"fleet-{tag}",
        version=version,
        capacity=capacity,
        queue=queue,
        misbehaving=misbehaving,
    )
