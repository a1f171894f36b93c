"""The span tree of one trace: roots, orphans, depth, self time and waterfall offsets.

Pure (no I/O): it takes any objects with ``span_id``, ``parent_span_id``, ``start_us``
and ``end_us`` (microseconds since the epoch) and is shared by the trace view and the
critical path (:mod:`storage.read.critical_path`).

Rules:

- A span whose parent is not in the trace is an *orphan* (its parent never arrived, or
  was pruned): it becomes a root of its own and is marked, so a partial trace still
  renders. A span that names itself as its parent is an orphan too.
- A parent chain that loops (malformed ids) is cut where the walk from the roots cannot
  reach it: the first span of the loop (in input order) becomes an orphan root.
- A span id seen twice keeps its first occurrence (the primary key includes the start
  time, so a client that reuses an id can store two rows).
- Children are ordered by start time, then span id (the waterfall order).
- Self time is the span's duration minus the union of its children's intervals clipped
  to the span's own interval (time the span spent not waiting on any child).
- Everything is iterative: a 10,000-deep chain of spans must not hit Python's recursion
  limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class TimedSpan(Protocol):
    """What the tree needs of a span."""

    @property
    def span_id(self) -> bytes: ...

    @property
    def parent_span_id(self) -> bytes | None: ...

    @property
    def start_us(self) -> int: ...

    @property
    def end_us(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one span sits in its trace's tree and waterfall."""

    depth: int
    self_us: int
    offset_us: int
    orphan: bool
    child_count: int


@dataclass(slots=True)
class SpanForest:
    """The spans of a trace as a forest: index, children (waterfall order) and roots."""

    spans: dict[bytes, TimedSpan]
    children: dict[bytes, list[bytes]]
    roots: list[bytes]
    orphans: set[bytes]
    _preorder: list[bytes] | None = None  # memo, once the forest is built

    @classmethod
    def build(cls, spans: Iterable[TimedSpan]) -> SpanForest:
        """Indexes ``spans`` (first occurrence of an id wins) and links them."""
        index: dict[bytes, TimedSpan] = {}
        for span in spans:
            index.setdefault(span.span_id, span)
        children: dict[bytes, list[bytes]] = {sid: [] for sid in index}
        roots: list[bytes] = []
        orphans: set[bytes] = set()
        for sid, span in index.items():
            parent = span.parent_span_id
            if parent is None:
                roots.append(sid)
            elif parent == sid or parent not in index:
                roots.append(sid)
                orphans.add(sid)
            else:
                children[parent].append(sid)
        forest = cls(index, children, roots, orphans)
        forest._cut_loops()
        forest._order()
        forest._preorder = forest._walk()
        return forest

    def _order(self) -> None:
        def key(sid: bytes) -> tuple[int, bytes]:
            return (self.spans[sid].start_us, sid)

        for kids in self.children.values():
            kids.sort(key=key)
        self.roots.sort(key=key)

    def _cut_loops(self) -> None:
        """Spans not reachable from a root sit on a parent loop: cut each loop once."""
        reached = set(self.preorder())
        for sid in self.spans:
            if sid in reached:
                continue
            parent = self.spans[sid].parent_span_id
            assert parent is not None
            self.children[parent].remove(sid)
            self.roots.append(sid)
            self.orphans.add(sid)
            reached.update(self._subtree(sid))

    def _subtree(self, root: bytes) -> list[bytes]:
        out, stack = [], [root]
        while stack:
            sid = stack.pop()
            out.append(sid)
            stack.extend(reversed(self.children[sid]))
        return out

    def preorder(self) -> list[bytes]:
        """Every reachable span id, depth first, children in waterfall order."""
        return self._preorder if self._preorder is not None else self._walk()

    def _walk(self) -> list[bytes]:
        out: list[bytes] = []
        for root in self.roots:
            out.extend(self._subtree(root))
        return out

    def subtree_bounds(self) -> dict[bytes, tuple[int, int]]:
        """Per span, the earliest start and latest end of it and all its descendants."""
        bounds: dict[bytes, tuple[int, int]] = {}
        for sid in reversed(self.preorder()):  # children before their parent
            span = self.spans[sid]
            lo, hi = span.start_us, span.end_us
            for kid in self.children[sid]:
                k_lo, k_hi = bounds[kid]
                lo, hi = min(lo, k_lo), max(hi, k_hi)
            bounds[sid] = (lo, hi)
        return bounds


def covered_us(intervals: Sequence[tuple[int, int]], lo: int, hi: int) -> int:
    """Length of the union of ``intervals`` clipped to ``[lo, hi]``."""
    total, reach = 0, lo
    for start, end in sorted(intervals):
        start, end = max(start, reach), min(end, hi)
        if end > start:
            total += end - start
            reach = end
    return total


def place(forest: SpanForest, trace_start_us: int) -> dict[bytes, Placement]:
    """Depth, self time, offset from ``trace_start_us`` and orphan mark of every span."""
    depth: dict[bytes, int] = {}
    out: dict[bytes, Placement] = {}
    for sid in forest.preorder():
        span = forest.spans[sid]
        parent = span.parent_span_id
        d = 0 if sid in forest.orphans or parent is None else depth[parent] + 1
        depth[sid] = d
        kids = [(forest.spans[k].start_us, forest.spans[k].end_us) for k in forest.children[sid]]
        busy = covered_us(kids, span.start_us, span.end_us)
        out[sid] = Placement(
            depth=d,
            self_us=max(span.end_us - span.start_us, 0) - busy,
            offset_us=span.start_us - trace_start_us,
            orphan=sid in forest.orphans,
            child_count=len(kids),
        )
    return out
