"""One evaluation cycle: due rules in bounded batches, then due notification groups.

Each batch is one worker transaction that claims up to ``batch_size`` due rules with
``FOR UPDATE SKIP LOCKED`` and holds them while their data is read (one tenant
transaction per org; one support transaction for platform rules), then writes their
states, evaluations and notifications, and moves each rule's ``next_eval_at`` to its next
tick (interval-aligned on the epoch). Several processes running cycles at once therefore
evaluate each rule once per tick: a claimed rule is invisible to the others until it is
done, and a batch that fails rolls back whole, leaving its rules due.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from alerting import states as sm
from alerting.evaluate import Evaluation, evaluate
from alerting.notify import Timers, flush_due_groups, notify_budget_steps
from storage import DbRole, Scope, scoped_transaction
from storage import alert_engine as store
from storage import alert_spec as spec

_log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Rules of one org read in one transaction at most (bigger orgs are split across threads).
CHUNK = 50


@dataclass(frozen=True, slots=True)
class CycleSettings:
    """How a cycle runs."""

    batch_size: int = 200
    parallelism: int = 4
    eval_timeout_s: int = 30
    timers: Timers = field(default_factory=Timers)
    max_batches: int = 1000


@dataclass
class CycleSummary:
    """What a cycle did (the scheduler's run summary)."""

    rules: int = 0
    batches: int = 0
    errors: int = 0
    transitions: int = 0
    notifications: int = 0
    by_state: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "rules": self.rules,
            "batches": self.batches,
            "errors": self.errors,
            "transitions": self.transitions,
            "notifications": self.notifications,
            "by_state": dict(self.by_state),
        }


def next_tick(now: datetime, interval_s: int) -> datetime:
    """The first interval-aligned time after ``now`` (alignment on the Unix epoch)."""
    elapsed = (now - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=(elapsed // interval_s + 1) * interval_s)


def run_cycle(engine: Engine, now: datetime, settings: CycleSettings | None = None) -> CycleSummary:
    """Evaluates every due rule at ``now`` and flushes due notification groups."""
    settings = settings or CycleSettings()
    summary = CycleSummary()
    for _ in range(settings.max_batches):
        if run_batch(engine, now, settings, summary) < settings.batch_size:
            break
    with scoped_transaction(engine, Scope(DbRole.WORKER)) as conn:
        summary.notifications += flush_due_groups(conn, now, settings.timers)
    return summary


def run_batch(engine: Engine, now: datetime, settings: CycleSettings, summary: CycleSummary) -> int:
    """Claims, evaluates and records one batch of due rules; returns how many it claimed."""
    with scoped_transaction(engine, Scope(DbRole.WORKER)) as conn:
        rules = store.claim_due_rules(conn, now, settings.batch_size)
        if not rules:
            return 0
        results = _evaluate_all(engine, rules, now, settings.eval_timeout_s, settings.parallelism)
        stored = store.load_states(conn, [r.id for r in rules])
        writes = _Writes()
        for rule in rules:
            _record(conn, rule, stored[rule.id], results[rule.id], now, settings, summary, writes)
        writes.flush(conn, now, settings.timers)
        store.set_next_eval(conn, {r.id: next_tick(now, r.interval_s) for r in rules})
    summary.rules += len(rules)
    summary.batches += 1
    return len(rules)


@dataclass
class _Writes:
    """A batch's writes, sent together (pipelined) instead of one round trip each."""

    states: list[tuple[uuid.UUID, store.StateRow]] = field(default_factory=list)
    forgotten: list[tuple[uuid.UUID, uuid.UUID, str]] = field(default_factory=list)
    evaluations: list[store.EvaluationRow] = field(default_factory=list)
    changed_groups: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)

    def flush(self, conn: Connection, now: datetime, timers: Timers) -> None:
        store.save_states(conn, self.states, now)
        store.forget_states(conn, self.forgotten)
        store.record_evaluations(conn, self.evaluations)
        store.mark_groups_changed(
            conn, self.changed_groups, now,
            timers.group_wait.total_seconds(), timers.group_interval.total_seconds(),
        )  # fmt: skip


def _scope(rule: store.RuleRow) -> Scope:
    if rule.scope == "platform":
        return Scope(DbRole.SUPPORT)
    return Scope(DbRole.TENANT, rule.org_id)


def _evaluate_all(
    engine: Engine,
    rules: Sequence[store.RuleRow],
    now: datetime,
    timeout_s: int,
    parallelism: int,
) -> dict[uuid.UUID, Evaluation]:
    by_scope: dict[Scope, list[store.RuleRow]] = defaultdict(list)
    for rule in rules:
        by_scope[_scope(rule)].append(rule)
    out: dict[uuid.UUID, Evaluation] = {}
    # Orgs are read in parallel, each in its own transaction: the reads wait on the
    # database, not on Python. ``parallelism`` connections besides the batch's own.
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        futures = [
            pool.submit(_evaluate_scope, engine, scope, group[i : i + CHUNK], now, timeout_s)
            for scope, group in by_scope.items()
            for i in range(0, len(group), CHUNK)
        ]
        for future in futures:
            out.update(future.result())
    return out


def _evaluate_scope(
    engine: Engine, scope: Scope, rules: Sequence[store.RuleRow], now: datetime, timeout_s: int
) -> dict[uuid.UUID, Evaluation]:
    # Optimistic: every rule of the scope in one transaction, no savepoints (two round
    # trips a rule saved). If one fails, the scope is done again with a savepoint per
    # rule, so that the failure costs only its own rule (an Error outcome).
    try:
        with scoped_transaction(engine, scope) as conn:
            conn.execute(text(f"SET LOCAL statement_timeout = '{int(timeout_s)}s'"))
            return {rule.id: evaluate(conn, rule, now) for rule in rules}
    except Exception as exc:  # retried rule by rule below
        _log.info("evaluation of %d rules failed (%s); retrying one by one", len(rules), exc)
    with scoped_transaction(engine, scope) as conn:
        conn.execute(text(f"SET LOCAL statement_timeout = '{int(timeout_s)}s'"))
        return {rule.id: _evaluate_one(conn, rule, now) for rule in rules}


def _evaluate_one(conn: Connection, rule: store.RuleRow, now: datetime) -> Evaluation:
    try:
        with conn.begin_nested():
            return evaluate(conn, rule, now)
    except Exception as exc:  # any failure of one rule is that rule's Error outcome
        _log.warning("alert rule %s failed: %s", rule.id, exc)
        detail = f"{type(exc).__name__}: {exc}"[:500]
        return Evaluation(sm.Outcome.ERROR, details={"error": detail})


def _timing(rule: store.RuleRow) -> sm.Timing:
    return sm.Timing(
        for_=timedelta(seconds=rule.for_s),
        keep_firing_for=timedelta(seconds=rule.keep_firing_for_s),
        no_data=rule.no_data_state,
        error=rule.error_state,
    )


def _instance(row: store.StateRow) -> sm.Instance:
    return sm.Instance(
        fingerprint=row.fingerprint,
        labels=row.labels,
        state=sm.State(row.state),
        is_firing=row.is_firing,
        active_at=row.active_at,
        fired_at=row.fired_at,
        breach_ended_at=row.breach_ended_at,
        resolved_at=row.resolved_at,
        last_value=row.last_value,
        missed=row.missed,
        reason=row.reason,
    )


def _row(rule_id: uuid.UUID, inst: sm.Instance) -> store.StateRow:
    return store.StateRow(
        rule_id=rule_id,
        fingerprint=inst.fingerprint,
        labels=dict(inst.labels),
        state=inst.state.value,
        is_firing=inst.is_firing,
        active_at=inst.active_at,
        fired_at=inst.fired_at,
        breach_ended_at=inst.breach_ended_at,
        resolved_at=inst.resolved_at,
        last_value=inst.last_value,
        missed=inst.missed,
        reason=inst.reason,
    )


def _record(
    conn: Connection,
    rule: store.RuleRow,
    stored: Sequence[store.StateRow],
    result: Evaluation,
    now: datetime,
    settings: CycleSettings,
    summary: CycleSummary,
    writes: _Writes,
) -> None:
    before = [_instance(r) for r in stored]
    transitions = sm.transition(before, result.outcome, result.samples, now, _timing(rule))
    for t in transitions:
        if t.after is None:
            writes.forgotten.append((rule.org_id, rule.id, t.instance.fingerprint))
        elif t.after != t.before or t.event:
            writes.states.append((rule.org_id, _row(rule.id, t.after)))
    events = [t for t in transitions if t.event is not None]
    # A budget rule's notifications are its ladder steps (below), not firing/resolved.
    if events and rule.type != "budget":
        writes.changed_groups.append((rule.org_id, rule.id))
    state = sm.rule_state(transitions)
    details = {
        **result.details,
        "outcome": result.outcome.value,
        "instances": _details(transitions),
    }
    writes.evaluations.append(store.EvaluationRow(rule, now, state.value, result.value, details))
    if result.period is not None and result.budgets:
        params = spec.parse_params(rule.type, rule.params)
        assert isinstance(params, spec.BudgetParams)
        summary.notifications += notify_budget_steps(
            conn, rule, result.period, result.budgets, params.amount_usd, now
        )
    summary.transitions += len(events)
    summary.errors += result.outcome is sm.Outcome.ERROR
    summary.by_state[state.value] += 1


def _details(transitions: Sequence[sm.Transition]) -> list[Mapping[str, Any]]:
    return [
        {
            "labels": dict(t.instance.labels),
            "state": t.instance.state.value,
            "value": t.instance.last_value,
            **({"event": t.event.value} if t.event else {}),
        }
        for t in transitions[:50]
    ]
