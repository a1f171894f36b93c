"""Stage 2, state transition: the pure state machine of rule instances (no I/O).

Grafana's instance states with Prometheus' ``for`` / ``keep_firing_for``:

- a breach moves Normal -> Pending, and Pending -> Alerting once it has lasted ``for``
  (``for = 0``: straight to Alerting); a clear moves Pending -> Normal silently;
- a clear moves Alerting -> Recovering while ``keep_firing_for`` runs (0: straight to
  Normal, *resolved*); a breach in Recovering goes back to Alerting (no new notification:
  the alert never stopped firing);
- an instance whose series vanishes resolves after :data:`MISSED_TO_RESOLVE` evaluations
  without it (reason ``MissingSeries``); a non-firing one is then forgotten;
- an evaluation with no series at all (NoData) or that failed (Error) applies the rule's
  choice to every instance it has (or to its base instance, fingerprint ``""``, if none):
  ``no_data`` / ``error`` put them in that health state (firing ones keep firing; a NoData
  instance still counts a missed evaluation, so it resolves like a vanished series),
  ``alerting`` treats them as breached, ``normal`` as clear, ``keep_last`` changes nothing.

Notifications follow only two events, as in Grafana: ``firing`` (into Alerting from a
non-firing state) and ``resolved`` (from firing to not firing). A rule's state is the worst
of its instances' (:func:`rule_state`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

MISSED_TO_RESOLVE = 2


class State(StrEnum):
    """Instance states (the ``alert_states.state`` values)."""

    NORMAL = "normal"
    PENDING = "pending"
    ALERTING = "alerting"
    RECOVERING = "recovering"
    NO_DATA = "no_data"
    ERROR = "error"


#: Worst first wins: the rule's state is the instance state with the highest rank.
RANK = {
    State.NORMAL: 0,
    State.PENDING: 1,
    State.NO_DATA: 2,
    State.ERROR: 3,
    State.RECOVERING: 4,
    State.ALERTING: 5,
}


class Event(StrEnum):
    """What a transition tells the notification stage."""

    FIRING = "firing"
    RESOLVED = "resolved"


class Outcome(StrEnum):
    """How an evaluation went."""

    OK = "ok"
    NO_DATA = "no_data"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Timing:
    """A rule's timing and choices."""

    for_: timedelta = timedelta(0)
    keep_firing_for: timedelta = timedelta(0)
    no_data: str = "no_data"  # no_data | alerting | normal | keep_last
    error: str = "error"  # error | alerting | normal | keep_last


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an evaluation: its labels, value and whether it breaches."""

    labels: Mapping[str, str]
    value: float | None
    breached: bool


@dataclass(frozen=True, slots=True)
class Instance:
    """The stored state of one rule instance."""

    fingerprint: str
    labels: Mapping[str, str]
    state: State = State.NORMAL
    is_firing: bool = False
    active_at: datetime | None = None  # when the current breach began (Pending start)
    fired_at: datetime | None = None  # when it went to Alerting
    breach_ended_at: datetime | None = None  # when Recovering began
    resolved_at: datetime | None = None
    last_value: float | None = None
    missed: int = 0
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """An instance after one evaluation, and what happened to it."""

    before: Instance | None
    after: Instance | None  # None: forgotten (vanished and not firing)
    event: Event | None

    @property
    def instance(self) -> Instance:
        """The instance after, or before if it was forgotten."""
        return self.after or self.before  # type: ignore[return-value]


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable id of a label set (``""`` for the empty set: a rule's base instance)."""
    if not labels:
        return ""
    raw = json.dumps(dict(sorted(labels.items())), separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _underlying(inst: Instance) -> State:
    """The Normal/Pending/Alerting/Recovering state behind a NoData/Error one."""
    if inst.state not in (State.NO_DATA, State.ERROR):
        return inst.state
    if inst.is_firing:
        return State.RECOVERING if inst.breach_ended_at else State.ALERTING
    return State.PENDING if inst.active_at else State.NORMAL


def _breach(inst: Instance, now: datetime, timing: Timing) -> tuple[Instance, Event | None]:
    state = _underlying(inst)
    if state in (State.ALERTING, State.RECOVERING):
        return replace(inst, state=State.ALERTING, breach_ended_at=None, reason=None), None
    active = inst.active_at if state is State.PENDING and inst.active_at else now
    if now - active >= timing.for_:
        fired = replace(
            inst, state=State.ALERTING, is_firing=True, active_at=active, fired_at=now,
            breach_ended_at=None, resolved_at=None, reason=None,
        )  # fmt: skip
        return fired, Event.FIRING
    return replace(inst, state=State.PENDING, active_at=active, reason=None), None


def _resolve(inst: Instance, now: datetime, reason: str | None) -> Instance:
    return replace(
        inst, state=State.NORMAL, is_firing=False, active_at=None, breach_ended_at=None,
        resolved_at=now, reason=reason,
    )  # fmt: skip


def _clear(inst: Instance, now: datetime, timing: Timing) -> tuple[Instance, Event | None]:
    state = _underlying(inst)
    if state is State.ALERTING:
        if timing.keep_firing_for > timedelta(0):
            return replace(inst, state=State.RECOVERING, breach_ended_at=now), None
        return _resolve(inst, now, None), Event.RESOLVED
    if state is State.RECOVERING:
        ended = inst.breach_ended_at or now
        if now - ended >= timing.keep_firing_for:
            return _resolve(inst, now, None), Event.RESOLVED
        return replace(inst, state=State.RECOVERING, breach_ended_at=ended), None
    return replace(inst, state=State.NORMAL, active_at=None, reason=None), None


def _step(inst: Instance, sample: Sample, now: datetime, timing: Timing) -> Transition:
    base = replace(inst, labels=dict(sample.labels), last_value=sample.value, missed=0)
    after, event = (_breach if sample.breached else _clear)(base, now, timing)
    return Transition(inst, after, event)


def _missing(inst: Instance, now: datetime, health: State | None = None) -> Transition:
    missed = inst.missed + 1
    if missed >= MISSED_TO_RESOLVE:
        if inst.is_firing:
            resolved = _resolve(inst, now, "MissingSeries")
            resolved = replace(resolved, state=health or State.NORMAL, missed=missed)
            return Transition(inst, resolved, Event.RESOLVED)
        if health is None:
            return Transition(inst, None, None)
    state = health or inst.state
    return Transition(inst, replace(inst, state=state, missed=missed, last_value=None), None)


def transition(
    instances: Iterable[Instance],
    outcome: Outcome,
    samples: Sequence[Sample],
    now: datetime,
    timing: Timing,
) -> list[Transition]:
    """Every instance of a rule after one evaluation at ``now`` (see the module docstring).

    Args:
        instances: the rule's stored instances.
        outcome: how the evaluation went; ``samples`` are used only when it is OK.
        samples: one per series the evaluation found.
        now: the evaluation time.
        timing: the rule's ``for``, ``keep_firing_for`` and NoData/Error choices.
    """
    known = {i.fingerprint: i for i in instances}
    if outcome is Outcome.OK and samples:
        return _with_samples(known, samples, now, timing)
    choice = timing.error if outcome is Outcome.ERROR else timing.no_data
    targets = list(known.values()) or [Instance(fingerprint="", labels={})]
    if choice == "keep_last":
        return [Transition(i, i, None) for i in targets if i.fingerprint in known]
    if choice in ("alerting", "normal"):
        breached = choice == "alerting"
        return [_step(i, Sample(i.labels, None, breached), now, timing) for i in targets]
    if outcome is Outcome.ERROR:
        return [Transition(i, replace(i, state=State.ERROR, reason="Error"), None) for i in targets]
    return [_missing(replace(i, reason="NoData"), now, State.NO_DATA) for i in targets]


def _with_samples(
    known: dict[str, Instance], samples: Sequence[Sample], now: datetime, timing: Timing
) -> list[Transition]:
    out: list[Transition] = []
    seen: set[str] = set()
    for sample in samples:
        fp = fingerprint(sample.labels)
        if fp in seen:
            continue
        seen.add(fp)
        out.append(_step(known.get(fp) or Instance(fp, dict(sample.labels)), sample, now, timing))
    out.extend(_missing(i, now) for fp, i in known.items() if fp not in seen)
    return out


def rule_state(transitions: Iterable[Transition]) -> State:
    """The worst state among the instances after an evaluation (Normal if none)."""
    states = [t.after.state for t in transitions if t.after is not None]
    return max(states, key=RANK.__getitem__, default=State.NORMAL)
