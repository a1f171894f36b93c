"""The alert state machine, on a controlled clock (Grafana's worked examples)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerting.states import (
    Event,
    Instance,
    Outcome,
    Sample,
    State,
    Timing,
    Transition,
    fingerprint,
    rule_state,
    transition,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
S30 = timedelta(seconds=30)


class Walk:
    """Evaluates one rule again and again, keeping its instances like the store does."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.instances: dict[str, Instance] = {}
        self.log: list[tuple[int, str, State, Event | None]] = []

    def st(self, fp: str = "") -> State:
        return self.instances[fp].state

    def eval(self, step: int, outcome: Outcome, samples: list[Sample]) -> list[Transition]:
        now = T0 + step * S30
        out = transition(self.instances.values(), outcome, samples, now, self.timing)
        for t in out:
            if t.after is None:
                self.instances.pop(t.before.fingerprint)  # type: ignore[union-attr]
            else:
                self.instances[t.after.fingerprint] = t.after
            self.log.append((step, t.instance.fingerprint, t.instance.state, t.event))
        return out


def breach(value: float = 10.0, **labels: str) -> Sample:
    return Sample(labels, value, True)


def clear(value: float = 0.0, **labels: str) -> Sample:
    return Sample(labels, value, False)


def test_pending_period_then_alerting_then_resolved() -> None:
    # Grafana's example: interval 30 s, pending 90 s: Pending at 01:00, Alerting at 02:30.
    walk = Walk(Timing(for_=timedelta(seconds=90)))
    states = []
    for step, sample in enumerate([clear(), clear(), breach(), breach(), breach(), breach()]):
        walk.eval(step, Outcome.OK, [sample])
        states.append(walk.st())
    assert states == [State.NORMAL] * 2 + [State.PENDING] * 3 + [State.ALERTING]
    assert [e for *_, e in walk.log if e] == [Event.FIRING]
    assert walk.instances[""].fired_at == T0 + 5 * S30
    walk.eval(6, Outcome.OK, [clear()])
    assert walk.st() is State.NORMAL
    assert [e for *_, e in walk.log if e] == [Event.FIRING, Event.RESOLVED]


def test_pending_clear_is_silent_and_resets_the_timer() -> None:
    walk = Walk(Timing(for_=timedelta(seconds=60)))
    walk.eval(0, Outcome.OK, [breach()])
    walk.eval(1, Outcome.OK, [clear()])
    walk.eval(2, Outcome.OK, [breach()])
    walk.eval(3, Outcome.OK, [breach()])
    assert walk.st() is State.PENDING  # 30 s into the new breach
    walk.eval(4, Outcome.OK, [breach()])
    assert walk.st() is State.ALERTING
    assert [e for *_, e in walk.log if e] == [Event.FIRING]


def test_keep_firing_for_recovers_and_rebreach_does_not_renotify() -> None:
    walk = Walk(Timing(keep_firing_for=timedelta(seconds=60)))
    walk.eval(0, Outcome.OK, [breach()])
    assert walk.st() is State.ALERTING
    walk.eval(1, Outcome.OK, [clear()])
    assert walk.st() is State.RECOVERING
    walk.eval(2, Outcome.OK, [breach()])  # back to Alerting, the timer resets
    walk.eval(3, Outcome.OK, [clear()])
    walk.eval(4, Outcome.OK, [clear()])
    assert walk.st() is State.RECOVERING
    walk.eval(5, Outcome.OK, [clear()])  # 60 s after the last clear began
    assert walk.st() is State.NORMAL
    assert [e for *_, e in walk.log if e] == [Event.FIRING, Event.RESOLVED]


def test_vanished_series_resolves_after_two_missed_evaluations() -> None:
    walk = Walk(Timing())
    walk.eval(0, Outcome.OK, [breach(agent="a"), breach(agent="b")])
    walk.eval(1, Outcome.OK, [breach(agent="a")])
    b = fingerprint({"agent": "b"})
    assert walk.st(b) is State.ALERTING
    assert walk.instances[b].missed == 1
    walk.eval(2, Outcome.OK, [breach(agent="a")])
    assert walk.st(b) is State.NORMAL
    assert walk.instances[b].reason == "MissingSeries"
    walk.eval(3, Outcome.OK, [breach(agent="a")])
    assert b not in walk.instances  # a normal instance that stays away is forgotten
    events = [(fp, e) for _, fp, _, e in walk.log if e]
    assert events == [
        (fingerprint({"agent": "a"}), Event.FIRING),
        (b, Event.FIRING),
        (b, Event.RESOLVED),
    ]


def test_rule_state_is_the_worst_instance() -> None:
    walk = Walk(Timing(for_=timedelta(minutes=5)))
    out = walk.eval(0, Outcome.OK, [clear(agent="a"), breach(agent="b")])
    assert rule_state(out) is State.PENDING
    out = walk.eval(1, Outcome.OK, [clear(agent="a"), clear(agent="b")])
    assert rule_state(out) is State.NORMAL
    assert rule_state([]) is State.NORMAL


def test_no_data_default_state_then_resolves_a_firing_instance() -> None:
    walk = Walk(Timing())
    walk.eval(0, Outcome.OK, [breach()])
    walk.eval(1, Outcome.NO_DATA, [])
    inst = walk.instances[""]
    assert inst.state is State.NO_DATA
    assert inst.is_firing
    walk.eval(2, Outcome.NO_DATA, [])
    inst = walk.instances[""]
    assert inst.state is State.NO_DATA
    assert not inst.is_firing
    assert [e for *_, e in walk.log if e] == [Event.FIRING, Event.RESOLVED]


def test_no_data_choices() -> None:
    alerting = Walk(Timing(no_data="alerting"))
    alerting.eval(0, Outcome.NO_DATA, [])
    assert alerting.st() is State.ALERTING
    normal = Walk(Timing(no_data="normal"))
    normal.eval(0, Outcome.OK, [breach()])
    normal.eval(1, Outcome.NO_DATA, [])
    assert normal.st() is State.NORMAL
    keep = Walk(Timing(no_data="keep_last"))
    keep.eval(0, Outcome.OK, [breach()])
    for step in range(1, 5):
        keep.eval(step, Outcome.NO_DATA, [])
    assert keep.st() is State.ALERTING
    assert [e for *_, e in keep.log if e] == [Event.FIRING]


def test_error_choices_and_recovery_from_error() -> None:
    walk = Walk(Timing(for_=timedelta(seconds=30)))
    walk.eval(0, Outcome.OK, [breach()])
    walk.eval(1, Outcome.OK, [breach()])
    assert walk.st() is State.ALERTING
    walk.eval(2, Outcome.ERROR, [])
    assert walk.st() is State.ERROR
    assert walk.instances[""].is_firing
    walk.eval(3, Outcome.OK, [breach()])  # still firing: no second notification
    assert walk.st() is State.ALERTING
    assert [e for *_, e in walk.log if e] == [Event.FIRING]
    to_alerting = Walk(Timing(error="alerting"))
    to_alerting.eval(0, Outcome.ERROR, [])
    assert to_alerting.st() is State.ALERTING
    to_normal = Walk(Timing(error="normal"))
    to_normal.eval(0, Outcome.OK, [breach()])
    to_normal.eval(1, Outcome.ERROR, [])
    assert to_normal.st() is State.NORMAL
    assert [e for *_, e in to_normal.log if e] == [Event.FIRING, Event.RESOLVED]


def test_fingerprint_is_stable_and_order_free() -> None:
    assert fingerprint({}) == ""
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})
