"""The critical path of a trace: the chain of spans that set its end-to-end duration.

Pure (no I/O); times are integer microseconds. The answer is a list of segments, in time
order, that tile the trace's whole window ``[earliest start, latest end]`` exactly: each
segment names the span that was "holding up" the trace during it, or ``None`` for a gap
in which no span of the path was running. A span's *contribution* is the sum of its
segments, so the contributions (gaps included) add up to the trace's duration.

Algorithm (the "last-finishing child" walk of Jaeger UI's critical path, extended so that
it explains the whole trace window, not only the root's own interval):

1. Build the span forest (:class:`storage.read.span_tree.SpanForest`). Several roots
   (a partial trace: orphans whose parent never arrived) hang under a virtual root that
   runs for no time, so the time between them is a gap.
2. Every span gets its *subtree window*: the earliest start and latest end of itself and
   all its descendants. A child that outlives its parent (async work, fire-and-forget,
   a FOLLOWS_FROM-style child that OpenTelemetry still records as a child) extends its
   parent's subtree window, so it can be on the path after its parent has ended; links
   are not parent edges and never put a span on the path.
3. Walk backwards from the end of the root's window with a cursor. At each span, among
   the children that start before the cursor, pick the one whose subtree ends last,
   clipped to the cursor (ties: the one whose subtree really ends last, then the earliest
   start, then the smallest span id). The time between that end and the cursor belongs to
   the span itself; then the walk descends into the child over ``[max(child start, the
   span's window start), clipped end]`` and, back at the span, moves the cursor to the
   child's start. When no child is left the rest of the window belongs to the span.
   Parallel children are thus handled: only the one finishing last is waited for; the
   others overlap it and are not on the path unless they end after it starts.
4. Time the walk gives to a span outside the span's own ``[start, end]`` is a *gap*
   (``None``): the parent had ended and its async child had not begun, or the trace had
   several roots with idle time between them.
5. Clock skew between services is not corrected (nothing says which clock is right):
   child windows are clipped to their parent's window, so a child that seems to start
   before its parent or end after the cursor can never make a segment negative, overlap
   another, or make the path longer than the trace; a child lying wholly outside the
   window it is searched in contributes nothing and that time stays with its parent.

The walk is iterative (deep chains must not hit the recursion limit) and takes
``O(n log n)`` for ``n`` spans (children sorted once, each picked at most once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from storage.read.span_tree import SpanForest, TimedSpan


@dataclass(frozen=True, slots=True)
class PathSegment:
    """Time ``[start_us, end_us)`` held up by ``span_id`` (``None``: a gap)."""

    span_id: bytes | None
    start_us: int
    end_us: int

    @property
    def duration_us(self) -> int:
        """The segment's length."""
        return self.end_us - self.start_us


@dataclass(frozen=True, slots=True)
class CriticalPath:
    """Segments in time order, tiling ``[start_us, end_us]`` without gaps or overlaps."""

    start_us: int
    end_us: int
    segments: tuple[PathSegment, ...]

    def contributions(self) -> dict[bytes | None, int]:
        """Microseconds per span on the path (``None``: gaps), in order of appearance."""
        out: dict[bytes | None, int] = {}
        for seg in self.segments:
            out[seg.span_id] = out.get(seg.span_id, 0) + seg.duration_us
        return out


@dataclass(slots=True)
class _Frame:
    """One span being explained over ``[lo, cursor]`` (the cursor moves down)."""

    span_id: bytes | None
    own: tuple[int, int]
    lo: int
    cursor: int
    kids: list[bytes]
    next_kid: int = 0


@dataclass(slots=True)
class _Walk:
    forest: SpanForest
    bounds: dict[bytes, tuple[int, int]]
    out: list[PathSegment] = field(default_factory=list)  # reverse time order

    def sorted_kids(self, kids: list[bytes]) -> list[bytes]:
        def key(sid: bytes) -> tuple[int, int, bytes]:
            _lo, hi = self.bounds[sid]
            return (-hi, self.forest.spans[sid].start_us, sid)

        return sorted(kids, key=key)

    def frame(self, sid: bytes, lo: int, hi: int) -> _Frame:
        span = self.forest.spans[sid]
        kids = self.sorted_kids(self.forest.children[sid])
        return _Frame(sid, (span.start_us, span.end_us), lo, hi, kids)

    def emit(self, frame: _Frame, start: int, end: int) -> None:
        """Gives ``[start, end]`` to the frame's span, the part outside its own time to gaps."""
        own_lo, own_hi = frame.own
        for sid, a, b in (
            (None, max(start, own_hi), end),
            (frame.span_id, max(start, own_lo), min(end, own_hi)),
            (None, start, min(end, own_lo)),
        ):
            if b > a:
                self.out.append(PathSegment(sid, a, b))

    def pick(self, frame: _Frame) -> tuple[bytes, int] | None:
        """The child finishing last before the cursor, and its clipped end."""
        while frame.next_kid < len(frame.kids):
            sid = frame.kids[frame.next_kid]
            frame.next_kid += 1
            start = self.forest.spans[sid].start_us
            sub_hi = self.bounds[sid][1]
            if sub_hi <= frame.lo:
                frame.next_kid = len(frame.kids)  # the rest end even earlier
                return None
            if start < frame.cursor:
                return sid, min(sub_hi, frame.cursor)
        return None

    def run(self, root: _Frame) -> None:
        stack = [root]
        while stack:
            frame = stack[-1]
            picked = self.pick(frame) if frame.cursor > frame.lo else None
            if picked is None:
                self.emit(frame, frame.lo, frame.cursor)
                stack.pop()
                continue
            sid, end = picked
            self.emit(frame, end, frame.cursor)
            child_lo = max(self.forest.spans[sid].start_us, frame.lo)
            frame.cursor = child_lo
            stack.append(self.frame(sid, child_lo, end))


def critical_path(spans: Iterable[TimedSpan]) -> CriticalPath:
    """The critical path of one trace's spans (see the module docstring)."""
    return critical_path_of(SpanForest.build(spans))


def critical_path_of(forest: SpanForest) -> CriticalPath:
    """:func:`critical_path` of an already built forest."""
    if not forest.roots:
        return CriticalPath(0, 0, ())
    bounds = forest.subtree_bounds()
    walk = _Walk(forest, bounds)
    lo = min(bounds[r][0] for r in forest.roots)
    hi = max(bounds[r][1] for r in forest.roots)
    if len(forest.roots) == 1:
        root = walk.frame(forest.roots[0], lo, hi)
    else:  # a virtual root that runs for no time: the time between roots is a gap
        root = _Frame(None, (lo, lo), lo, hi, walk.sorted_kids(forest.roots))
    walk.run(root)
    return CriticalPath(lo, hi, _merged(reversed(walk.out)))


def _merged(segments: Iterable[PathSegment]) -> tuple[PathSegment, ...]:
    """Adjacent segments of the same span (or gap) as one."""
    out: list[PathSegment] = []
    for seg in segments:
        if out and out[-1].span_id == seg.span_id and out[-1].end_us == seg.start_us:
            out[-1] = PathSegment(seg.span_id, out[-1].start_us, seg.end_us)
        else:
            out.append(seg)
    return tuple(out)
