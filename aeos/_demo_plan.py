"""Task-run plans: what one simulated task run does, drawn from a seeded ``random.Random``.

Pure, no I/O: a plan is a tree of frozen dataclasses with every latency, token count
and failure already decided, so that its duration is known before its spans are
emitted (a live run *ends* now) and the same seed gives the same plans.

Latencies are log-normal around a median with ``SIGMA`` ≈ 1, so p99 is about 10x p50
(exp(2.33 * SIGMA)); misbehaving agents are ``SLOW_FACTOR`` slower and fail far more
often. An LLM call slower than ``LLM_TIMEOUT_S`` fails with a timeout there.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

from aeos._demo_world import MODELS, Agent, Model, Org

SIGMA: Final = 0.99
SLOW_FACTOR: Final = 4.0
LLM_TIMEOUT_S: Final = 120.0
# Per LLM call: a retryable failure (rate limit, overload: retried after a backoff) and a
# fatal one (ends the run). Normal agents fail ~3 % of runs; misbehaving ones ~30 %.
RETRYABLE: Final = (0.03, 0.15)
FATAL: Final = (0.008, 0.10)
MAX_ATTEMPTS: Final = 3
CONTEXT_FAILURE: Final = 0.004  # handled: the run goes on without the context
TOOL_FAILURE: Final = 0.03  # handled likewise
TOOL_TIMEOUT_S: Final = 60.0
TOOL_SHARE: Final = 0.25  # runs that call a tool
CONTEXTS_PER_ORG: Final = 40
ROUTES: Final = {
    "support.billing": ("Draft refund reply", "Explain invoice line", "Update payment method"),
    "support.triage": ("Summarise support ticket", "Classify inbound email", "Escalate outage"),
    "research": ("Research competitor pricing", "Summarise market report", "Find sources"),
    "code.review": ("Review pull request", "Write unit tests", "Fix failing build"),
    "sales.outreach": ("Draft outreach email", "Qualify lead", "Prepare call notes"),
    "ops.incident": ("Correlate alerts", "Draft incident update", "Propose runbook step"),
}
ROUTING_REASONS: Final = ("least_loaded", "affinity", "capability", "round_robin")
HANDOFF_REASONS: Final = ("needs_specialist", "review", "capacity")
TOOLS: Final = {  # name: (explicit cost in USD per call, median latency in s)
    "web_search": (0.005, 0.8),
    "code_interpreter": (0.03, 4.0),
    "browser": (0.01, 2.5),
}
_RETRYABLE_ERRORS: Final = {
    "openai": ("openai.RateLimitError", "Error code: 429 - Rate limit reached for {model}"),
    "anthropic": ("anthropic.OverloadedError", "Error code: 529 - Overloaded"),
    "gcp.gemini": ("google.api_core.exceptions.ResourceExhausted", "429 Resource exhausted"),
}
_FATAL_ERRORS: Final = {
    "openai": ("openai.InternalServerError", "Error code: 500 - The server had an error"),
    "anthropic": ("anthropic.InternalServerError", "Error code: 500 - Internal server error"),
    "gcp.gemini": ("google.api_core.exceptions.InternalServerError", "500 Internal error"),
}


@dataclass(frozen=True, slots=True)
class Failure:
    """An error a step ends with: ``error.type``, the message, and whether the run ends."""

    error_type: str
    message: str
    fatal: bool


@dataclass(frozen=True, slots=True)
class LlmStep:
    """One LLM call (``record_llm_usage`` gets its counts unless it failed)."""

    agent: Agent
    gap_s: float
    latency_s: float
    model: Model
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int | None
    cache_creation_tokens: int | None
    reasoning_tokens: int | None
    failure: Failure | None


@dataclass(frozen=True, slots=True)
class ContextStep:
    """One UCE context operation."""

    agent: Agent
    gap_s: float
    latency_s: float
    op: str
    context_id: str
    cache_hit: bool | None
    size_tokens: int
    documents: int | None
    failure: Failure | None


@dataclass(frozen=True, slots=True)
class ToolStep:
    """One tool call, billed with an explicit ``aeos.cost.usd`` unless it failed."""

    agent: Agent
    gap_s: float
    latency_s: float
    tool: str
    cost_usd: float
    failure: Failure | None


Step = LlmStep | ContextStep | ToolStep


@dataclass(frozen=True, slots=True)
class Handoff:
    """Work handed from one agent to another; ``steps`` run under it, by ``to_agent``."""

    from_agent: Agent
    to_agent: Agent
    reason: str
    gap_s: float
    overhead_s: float
    steps: tuple[Step, ...]

    @property
    def duration_s(self) -> float:
        """The handoff span's duration."""
        return self.overhead_s + sum(s.gap_s + s.latency_s for s in self.steps)


@dataclass(frozen=True, slots=True)
class RunPlan:
    """One task run: routing, then the handoffs in order."""

    org: Org
    number: int
    task_title: str
    route: str
    candidates: tuple[str, ...]
    chosen: Agent
    routing_reason: str
    routing_s: float
    handoffs: tuple[Handoff, ...]
    finish_s: float

    @property
    def failure(self) -> Failure | None:
        """The fatal failure that ended the run, if any."""
        for handoff in self.handoffs:
            for step in handoff.steps:
                if step.failure is not None and step.failure.fatal:
                    return step.failure
        return None

    @property
    def duration_s(self) -> float:
        """The run's duration: routing, handoffs (with the gaps before them), finishing."""
        return self.routing_s + sum(h.gap_s + h.duration_s for h in self.handoffs) + self.finish_s


def lognormal(rng: random.Random, median: float, slow: bool = False) -> float:
    """A log-normal draw around ``median`` (``SLOW_FACTOR`` x and wider when ``slow``)."""
    factor, sigma = (SLOW_FACTOR, SIGMA + 0.2) if slow else (1.0, SIGMA)
    return median * factor * math.exp(rng.gauss(0.0, sigma))


def plan_run(rng: random.Random, org: Org, number: int) -> RunPlan:
    """Draws the ``number``-th task run of ``org``."""
    route = rng.choice(sorted(ROUTES))
    workers = org.workers
    chosen = rng.choice(workers)
    others = [w.agent_id for w in workers if w is not chosen]
    candidates = [chosen.agent_id, *rng.sample(others, min(len(others), rng.randint(1, 2)))]
    n_handoffs = rng.randint(1, 3) if len(org.agents) > 1 else 0
    holders = _holders(rng, org, chosen, n_handoffs)
    work = _work(rng, org, holders)
    handoffs = tuple(
        Handoff(
            from_agent=src,
            to_agent=dst,
            reason="assigned" if i == 0 else rng.choice(HANDOFF_REASONS),
            gap_s=rng.uniform(0.002, 0.02),
            overhead_s=rng.uniform(0.005, 0.03),
            steps=steps,
        )
        for i, (src, dst, steps) in enumerate(work)
    )
    return RunPlan(
        org=org,
        number=number,
        task_title=rng.choice(ROUTES[route]),
        route=route,
        candidates=tuple(rng.sample(candidates, len(candidates))),
        chosen=chosen,
        routing_reason=rng.choice(ROUTING_REASONS),
        routing_s=lognormal(rng, 0.004),
        handoffs=handoffs,
        finish_s=rng.uniform(0.002, 0.02),
    )


def _holders(rng: random.Random, org: Org, chosen: Agent, n: int) -> list[tuple[Agent, Agent]]:
    """(from, to) of each handoff: orchestrator to the chosen worker, then between agents."""
    if n == 0:
        return [(chosen, chosen)]  # a lone agent does the work itself, under one "handoff"
    pairs = [(org.orchestrator, chosen)]
    pool = [*org.workers, org.orchestrator]
    for _ in range(n - 1):
        current = pairs[-1][1]
        nxt = rng.choice([a for a in pool if a is not current] or [current])
        pairs.append((current, nxt))
    return pairs


def _work(
    rng: random.Random, org: Org, holders: list[tuple[Agent, Agent]]
) -> list[tuple[Agent, Agent, tuple[Step, ...]]]:
    """Spreads the run's steps over the handoffs and stops after a fatal failure."""
    weights = org.profile.llm_calls
    n_llm = rng.choices(range(1, 5), weights=weights)[0]
    slots: list[list[str]] = [[] for _ in holders]
    slots[0].append("context")
    for _ in range(n_llm):
        slots[rng.randrange(len(slots))].append("llm")
    if rng.random() < TOOL_SHARE:
        slots[rng.randrange(len(slots))].append("tool")
    for _ in range(rng.randint(0, 2)):
        slots[rng.randrange(len(slots))].append("context")
    out: list[tuple[Agent, Agent, tuple[Step, ...]]] = []
    for (src, dst), kinds in zip(holders, slots, strict=True):
        steps = _steps(rng, org, dst, kinds)
        out.append((src, dst, tuple(steps)))
        if any(s.failure is not None and s.failure.fatal for s in steps):
            break
    return out


def _steps(rng: random.Random, org: Org, agent: Agent, kinds: list[str]) -> list[Step]:
    steps: list[Step] = []
    for i, kind in enumerate(kinds):
        if kind == "llm":
            steps.extend(_llm_attempts(rng, org, agent))
        elif kind == "tool":
            steps.append(_tool(rng, agent))
        else:
            steps.append(_context(rng, org, agent, first=i == 0))
        if any(s.failure is not None and s.failure.fatal for s in steps):
            break
    return steps


def _llm_attempts(rng: random.Random, org: Org, agent: Agent) -> list[Step]:
    """One LLM call, with its retries after retryable failures (``MAX_ATTEMPTS`` at most)."""
    names, weights = zip(*org.profile.mix, strict=True)
    model = MODELS[rng.choices(names, weights=weights)[0]]
    attempts: list[Step] = []
    for attempt in range(MAX_ATTEMPTS):
        step = _llm(rng, org, agent, model, backoff=attempt > 0)
        attempts.append(step)
        if step.failure is None or step.failure.fatal:
            break
    return attempts


def _llm(rng: random.Random, org: Org, agent: Agent, model: Model, backoff: bool) -> LlmStep:
    scale = org.profile.context_scale if model.operation == "chat" else 1.0
    prompt = max(50, int(model.input_tokens * scale * math.exp(rng.gauss(0.0, 0.6))))
    output = int(model.output_tokens * math.exp(rng.gauss(0.0, 0.7)))
    # Latency does not follow this call's output size: the spread is all in the
    # log-normal, so p99/p50 stays ~10 per model.
    latency = lognormal(rng, 0.35 + model.output_tokens / model.tokens_per_s, agent.misbehaving)
    read, created = _cache(rng, model, prompt)
    failure = _llm_failure(rng, agent, model, latency)
    if failure is not None and failure.error_type == "TimeoutError":
        latency = LLM_TIMEOUT_S
    elif failure is not None:
        latency = min(latency, rng.uniform(0.05, 1.5))  # errors come back fast
    return LlmStep(
        agent=agent,
        gap_s=rng.uniform(1.0, 4.0) if backoff else rng.uniform(0.003, 0.05),
        latency_s=latency,
        model=model,
        input_tokens=prompt,
        output_tokens=output,
        cache_read_tokens=read,
        cache_creation_tokens=created,
        reasoning_tokens=int(output * rng.uniform(0.3, 0.8)) if model.reasoning else None,
        failure=failure,
    )


def _cache(rng: random.Random, model: Model, prompt: int) -> tuple[int | None, int | None]:
    """Cache reads on some calls with a long prompt; Anthropic calls also write the cache."""
    if model.operation != "chat" or prompt < 1024 or rng.random() > 0.55:
        return None, None
    read = int(prompt * rng.uniform(0.4, 0.85))
    if not model.cache_creation or rng.random() > 0.4:
        return read, None
    return read, int((prompt - read) * rng.uniform(0.2, 0.9))


def _llm_failure(
    rng: random.Random, agent: Agent, model: Model, latency_s: float
) -> Failure | None:
    if latency_s > LLM_TIMEOUT_S:
        return Failure("TimeoutError", f"{model.model} did not answer within 120 s", True)
    bad = int(agent.misbehaving)
    draw = rng.random()
    if draw < RETRYABLE[bad]:
        error_type, message = _RETRYABLE_ERRORS[model.provider]
        return Failure(error_type, message.format(model=model.model), False)
    if draw < RETRYABLE[bad] + FATAL[bad]:
        error_type, message = _FATAL_ERRORS[model.provider]
        return Failure(error_type, message, True)
    return None


def _context(rng: random.Random, org: Org, agent: Agent, first: bool) -> ContextStep:
    """A read or retrieve (first), else a write or retrieve; cache hits on reads mostly."""
    op = rng.choice(("read", "read", "retrieve")) if first else rng.choice(("write", "retrieve"))
    hit = None if op == "write" else rng.random() < (0.82 if op == "read" else 0.45)
    median = {"read": 0.045, "retrieve": 0.12, "write": 0.025}[op] * (0.15 if hit else 1.0)
    size = int(6000 * org.profile.context_scale * math.exp(rng.gauss(0.0, 0.8)))
    failed = rng.random() < CONTEXT_FAILURE
    return ContextStep(
        agent=agent,
        gap_s=rng.uniform(0.001, 0.01),
        latency_s=lognormal(rng, median),
        op=op,
        context_id=f"ctx-{org.index}{int(rng.paretovariate(1.2)) % CONTEXTS_PER_ORG:03d}",
        cache_hit=hit,
        size_tokens=max(200, size),
        documents=rng.randint(3, 12) if op == "retrieve" else None,
        failure=Failure("uce.StoreTimeoutError", "context store timed out", False)
        if failed
        else None,
    )


def _tool(rng: random.Random, agent: Agent) -> ToolStep:
    """A tool call; a failed or timed-out one is handled (the run goes on)."""
    tool = rng.choice(sorted(TOOLS))
    cost, median = TOOLS[tool]
    latency = lognormal(rng, median, agent.misbehaving)
    failure = None
    if latency > TOOL_TIMEOUT_S:
        latency, failure = TOOL_TIMEOUT_S, Failure("TimeoutError", f"{tool} timed out", False)
    elif rng.random() < TOOL_FAILURE:
        failure = Failure("ToolExecutionError", f"{tool} returned HTTP 502", False)
    return ToolStep(
        agent=agent,
        gap_s=rng.uniform(0.002, 0.03),
        latency_s=latency,
        tool=tool,
        cost_usd=cost,
        failure=failure,
    )
