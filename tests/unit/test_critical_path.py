"""The critical path against a brute-force reference, on constructed traces.

The reference simulates the definition one microsecond at a time, from the trace's end
backwards: at every tick it rescans all candidate children (no sorting, no pointers) to
find who holds the trace up. Small integer times keep it exact and quick.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from storage.read.critical_path import CriticalPath, critical_path
from storage.read.span_tree import SpanForest, place


@dataclass(frozen=True, slots=True)
class S:
    span_id: bytes
    parent_span_id: bytes | None
    start_us: int
    end_us: int


def sid(name: str) -> bytes:
    return name.encode().ljust(8, b"\0")


def s(name: str, parent: str | None, start: int, end: int) -> S:
    return S(sid(name), sid(parent) if parent else None, start, end)


@dataclass
class _RefFrame:
    node: S | None
    lo: int
    cursor: int
    consumed: set[bytes] = field(default_factory=set)


def reference(spans: list[S]) -> list[bytes | None]:
    """The owner of every microsecond of the trace window, by brute force."""
    index: dict[bytes, S] = {}
    for span in spans:
        index.setdefault(span.span_id, span)
    nodes = list(index.values())

    def is_root(n: S) -> bool:
        p = n.parent_span_id
        return p is None or p == n.span_id or p not in index

    def kids(n: S | None) -> list[S]:
        if n is None:
            return [c for c in nodes if is_root(c)]
        return [c for c in nodes if not is_root(c) and c.parent_span_id == n.span_id]

    def sub_end(n: S) -> int:
        return max([n.end_us] + [sub_end(c) for c in kids(n)])

    def sub_start(n: S) -> int:
        return min([n.start_us] + [sub_start(c) for c in kids(n)])

    roots = kids(None)
    t0, t1 = min(sub_start(r) for r in roots), max(sub_end(r) for r in roots)
    top: S | None = roots[0] if len(roots) == 1 else None
    stack = [_RefFrame(top, t0, t1)]
    owners: list[bytes | None] = []
    for t in range(t1 - 1, t0 - 1, -1):
        while True:
            f = stack[-1]
            if t < f.lo:
                stack.pop()
                continue
            cands = [
                c
                for c in kids(f.node)
                if c.span_id not in f.consumed
                and c.start_us < f.cursor
                and min(sub_end(c), f.cursor) > f.lo
            ]
            best = min(
                cands,
                key=lambda c: (-min(sub_end(c), f.cursor), -sub_end(c), c.start_us, c.span_id),
                default=None,
            )
            if best is not None and t < min(sub_end(best), f.cursor):
                f.consumed.add(best.span_id)
                end = min(sub_end(best), f.cursor)
                f.cursor = max(best.start_us, f.lo)
                stack.append(_RefFrame(best, f.cursor, end))
                continue
            n = f.node
            owners.append(n.span_id if n is not None and n.start_us <= t < n.end_us else None)
            break
    owners.reverse()
    return owners


def ticks(path: CriticalPath) -> list[bytes | None]:
    """The path as one owner per microsecond (checks that segments tile the window)."""
    out: list[bytes | None] = []
    at = path.start_us
    for seg in path.segments:
        assert seg.start_us == at
        assert seg.end_us > seg.start_us
        out.extend([seg.span_id] * seg.duration_us)
        at = seg.end_us
    assert at == path.end_us
    return out


def named(path: CriticalPath) -> list[tuple[str | None, int, int]]:
    return [
        (seg.span_id.rstrip(b"\0").decode() if seg.span_id else None, seg.start_us, seg.end_us)
        for seg in path.segments
    ]


Segments = list[tuple[str | None, int, int]]
SCENARIOS: dict[str, tuple[list[S], Segments]] = {
    "sequential": (
        [s("root", None, 0, 100), s("a", "root", 10, 40), s("b", "root", 40, 90)],
        [("root", 0, 10), ("a", 10, 40), ("b", 40, 90), ("root", 90, 100)],
    ),
    "parallel fan-out": (
        [
            s("root", None, 0, 100),
            s("a", "root", 10, 80),
            s("b", "root", 10, 60),
            s("c", "root", 20, 90),
        ],
        [("root", 0, 10), ("a", 10, 20), ("c", 20, 90), ("root", 90, 100)],
    ),
    "async child outlives its parent": (
        [s("root", None, 0, 50), s("a", "root", 10, 30), s("job", "root", 40, 120)],
        [("root", 0, 10), ("a", 10, 30), ("root", 30, 40), ("job", 40, 120)],
    ),
    "async child after a gap": (
        [s("root", None, 0, 50), s("job", "root", 70, 100)],
        [("root", 0, 50), (None, 50, 70), ("job", 70, 100)],
    ),
    "nested retries": (
        [
            s("root", None, 0, 100),
            s("call", "root", 5, 95),
            s("try1", "call", 10, 40),
            s("try2", "call", 45, 90),
            s("llm", "try2", 50, 85),
        ],
        [
            ("root", 0, 5),
            ("call", 5, 10),
            ("try1", 10, 40),
            ("call", 40, 45),
            ("try2", 45, 50),
            ("llm", 50, 85),
            ("try2", 85, 90),
            ("call", 90, 95),
            ("root", 95, 100),
        ],
    ),
    "skewed clock: child starts before its parent": (
        [s("root", None, 100, 200), s("remote", "root", 60, 180)],
        [("remote", 60, 180), ("root", 180, 200)],
    ),
    "skewed clock: child wholly outside its parent's window": (
        [s("root", None, 100, 200), s("mid", "root", 110, 190), s("lost", "mid", 10, 20)],
        # the lost span lies outside mid's window: 10..100 is one gap
        [
            (None, 10, 100),
            ("root", 100, 110),
            ("mid", 110, 190),
            ("root", 190, 200),
        ],
    ),
    "orphans: two roots with idle time between": (
        [s("r1", None, 0, 10), s("r2", "missing", 20, 30)],
        [("r1", 0, 10), (None, 10, 20), ("r2", 20, 30)],
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenarios(name: str) -> None:
    spans, expected = SCENARIOS[name]
    path = critical_path(spans)
    assert ticks(path) == reference(spans)
    merged = named(path)
    assert merged == expected
    assert sum(path.contributions().values()) == path.end_us - path.start_us


def random_trace(rng: random.Random) -> list[S]:
    """Up to 12 spans: nested, parallel, async, skewed, sometimes orphaned or duplicated."""
    spans = [S(b"\0" * 7 + b"\1", None, 0, rng.randint(1, 60))]
    for n in range(2, rng.randint(2, 12)):
        parent = rng.choice(spans)
        kind = rng.random()
        if kind < 0.6:  # inside the parent
            a = rng.randint(parent.start_us, parent.end_us)
            b = rng.randint(a, parent.end_us)
        elif kind < 0.8:  # async: may outlive the parent, or start after it ends
            a = rng.randint(parent.start_us, parent.end_us + 20)
            b = a + rng.randint(0, 40)
        else:  # skewed: shifted by up to 30 µs either way
            shift = rng.randint(-30, 30)
            a = max(rng.randint(parent.start_us, parent.end_us) + shift, -40)
            b = a + rng.randint(0, 30)
        parent_id = parent.span_id if rng.random() > 0.08 else b"missing!"
        spans.append(S(n.to_bytes(8, "big"), parent_id, a, b))
    if rng.random() < 0.1:
        spans.append(spans[-1])  # a duplicated span row
    rng.shuffle(spans)
    return spans


@pytest.mark.parametrize("seed", range(400))
def test_random_traces_equal_the_reference(seed: int) -> None:
    spans = random_trace(random.Random(seed))
    path = critical_path(spans)
    assert ticks(path) == reference(spans)
    assert path.start_us == min(x.start_us for x in spans)
    assert path.end_us == max(x.end_us for x in spans)


def test_deep_chain_and_wide_fan_out() -> None:
    chain = [S(i.to_bytes(8, "big"), (i - 1).to_bytes(8, "big") if i else None, i, 20_000 - i)
             for i in range(10_000)]  # fmt: skip
    path = critical_path(chain)
    assert sum(path.contributions().values()) == 20_000
    leaf = (9_999).to_bytes(8, "big")
    assert path.contributions()[leaf] == 2
    fan = [S(b"root0000", None, 0, 10_001)] + [
        S(i.to_bytes(8, "big"), b"root0000", i, i + 1) for i in range(1, 10_000)
    ]
    # back-to-back children: root, 9,999 children, root
    assert len(critical_path(fan).segments) == 10_001


def test_parent_loop_is_cut() -> None:
    spans = [s("a", "b", 0, 10), s("b", "a", 2, 8)]
    path = critical_path(spans)
    assert ticks(path)
    assert sum(path.contributions().values()) == 10
    forest = SpanForest.build(spans)
    assert forest.roots == [sid("a")]
    assert forest.orphans == {sid("a")}


def test_placements_depth_self_time_offsets_and_orphans() -> None:
    spans = [
        s("root", None, 100, 200),
        s("a", "root", 110, 150),
        s("b", "root", 140, 190),
        s("c", "a", 120, 130),
        s("lost", "gone", 160, 170),
    ]
    placed = place(SpanForest.build(spans), 100)
    assert placed[sid("root")].self_us == 100 - 80  # a and b together cover 110..190
    assert placed[sid("a")].self_us == 30
    assert placed[sid("c")].depth == 2
    assert placed[sid("c")].offset_us == 20
    assert placed[sid("lost")].orphan
    assert placed[sid("lost")].depth == 0
    assert not placed[sid("b")].orphan
    assert placed[sid("root")].child_count == 2
