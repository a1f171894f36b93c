"""Admission and decoding pieces of the receiver, without a database (issue 9)."""

from __future__ import annotations

import asyncio
import gzip
import uuid
import zlib

import pytest
from pydantic import ValidationError

from otlp_receiver._context import FULL_REQUEST_ITEMS, Admission, BodyBudget, RateLimits
from otlp_receiver._errors import ReceiverError
from otlp_receiver._http import _decompress
from otlp_receiver.settings import ReceiverSettings
from storage.ingest._queue import FairQueue, Pending, QueueFullError
from storage.ingest.rows import Batch

KEY, OTHER = uuid.uuid4(), uuid.uuid4()


def _pending(org: uuid.UUID, items: int) -> Pending:
    loop = asyncio.new_event_loop()
    try:
        return Pending(Batch(org), loop.create_future(), items)
    finally:
        loop.close()


def test_groups_take_the_lightest_org_first_then_round_robin() -> None:
    queue = FairQueue(1000, 500)
    heavy, light = uuid.uuid4(), uuid.uuid4()
    for _ in range(5):
        queue.push(_pending(heavy, 100))
    queue.push(_pending(light, 10))
    group = queue.take(150)
    assert [p.batch.org_id for p in group] == [light, heavy]  # light goes first
    assert queue.waiting == 4


def test_the_queue_refuses_over_its_bounds_even_when_empty() -> None:
    queue = FairQueue(100, 60)
    with pytest.raises(QueueFullError, match="items are waiting"):
        queue.push(_pending(KEY, 101))
    queue.push(_pending(KEY, 60))
    with pytest.raises(QueueFullError, match="at most 60 per org"):
        queue.push(_pending(KEY, 1))
    queue.push(_pending(OTHER, 40))
    queue.release(queue.take(1000))
    assert queue.items == 0


def test_admission_limits_a_key_and_the_process() -> None:
    admission = Admission(limit=3, per_key=2)
    admission.enter(KEY)
    admission.enter(KEY)
    with pytest.raises(ReceiverError) as caught:
        admission.enter(KEY)
    assert (caught.value.http_status, caught.value.reason) == (429, "key_busy")
    admission.enter(OTHER)
    with pytest.raises(ReceiverError, match="requests in progress"):
        admission.enter(uuid.uuid4())
    admission.leave(KEY)
    admission.enter(KEY)


def test_a_key_share_counts_decoded_requests_by_size() -> None:
    admission = Admission(limit=100, per_key=2)  # two full requests (512 items each)
    shares = []
    for _ in range(5):  # 4 of 50 items (a quarter each) leave room for one being read
        admission.enter(KEY)
        shares.append(admission.resize(KEY, 50))
    assert shares == [FULL_REQUEST_ITEMS // 4] * 5
    with pytest.raises(ReceiverError) as caught:
        admission.enter(KEY)
    assert caught.value.reason == "key_busy"
    assert "5 requests of this key are in progress" in caught.value.message
    admission.enter(OTHER)
    assert admission.resize(OTHER, 5000) == FULL_REQUEST_ITEMS  # a big one counts one
    admission.enter(OTHER)  # a second full one, being read
    with pytest.raises(ReceiverError, match="2 requests of this key are in progress"):
        admission.enter(OTHER)
    admission.leave(KEY, shares.pop())
    admission.enter(KEY)  # one small request done: room again
    admission.leave(KEY)
    for share in shares:
        admission.leave(KEY, share)
    admission.leave(OTHER, FULL_REQUEST_ITEMS)
    admission.leave(OTHER)
    assert (admission.in_flight, admission.by_key) == (0, {})


def test_the_express_group_leaves_out_the_heaviest_org() -> None:
    queue = FairQueue(10_000, 5_000)
    heavy, light, medium = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert queue.take_express(1000) == []  # nothing waits
    for _ in range(5):
        queue.push(_pending(heavy, 100))
    assert queue.take_express(1000) == []  # one org: its normal groups serve it
    assert queue.waiting == 5
    queue.push(_pending(light, 10))
    queue.push(_pending(medium, 30))
    queue.push(_pending(medium, 30))
    express = queue.take_express(1000)
    assert [p.batch.org_id for p in express] == [light, medium, medium]
    assert [p.batch.org_id for p in queue.take(1000)] == [heavy] * 5
    assert queue.waiting == 0


def test_a_key_over_its_rate_gets_a_retry_delay() -> None:
    rates = RateLimits(rate=100.0, burst=200)
    rates.charge(KEY, 200)
    with pytest.raises(ReceiverError) as caught:
        rates.charge(KEY, 150)
    assert caught.value.retry_after_s == 2
    assert caught.value.reason == "rate_limited"
    rates.charge(OTHER, 200)  # another key has its own bucket


def test_one_key_holds_at_most_half_of_the_body_budget() -> None:
    budget = BodyBudget(1000)
    budget.take(KEY, 500)
    with pytest.raises(ReceiverError, match="bodies"):
        budget.take(KEY, 1)
    budget.take(OTHER, 500)
    budget.give_back(KEY, 500)
    assert budget.used == 500


def test_a_body_is_refused_before_reading_while_the_budget_is_used_up() -> None:
    """gRPC's pre-read check: a full budget, or a key holding its half, refuses at once."""
    budget = BodyBudget(1000)
    budget.check_room(KEY)  # nothing held
    budget.take(KEY, 500)
    with pytest.raises(ReceiverError, match="bodies") as refused:
        budget.check_room(KEY)  # its half
    assert refused.value.reason == "bodies_in_flight"
    budget.check_room(OTHER)
    budget.take(OTHER, 499)
    budget.check_room(OTHER)  # 999 of 1000: room for a message, sized when it arrives
    budget.take(OTHER, 1)
    with pytest.raises(ReceiverError, match="bodies"):
        budget.check_room(uuid.uuid4())  # all of it
    budget.give_back(KEY, 500)
    budget.check_room(KEY)


def test_every_gzip_member_is_read_and_truncation_refused() -> None:
    two = gzip.compress(b"hello ") + gzip.compress(b"world")
    assert _decompress(two, "gzip", 1000) == b"hello world"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    cut = packer.compress(b"abc" * 100) + packer.flush(zlib.Z_SYNC_FLUSH)
    with pytest.raises(ReceiverError, match="truncated"):
        _decompress(cut, "gzip", 1000)
    with pytest.raises(ReceiverError, match="truncated"):
        _decompress(zlib.compress(b"abc" * 100)[:-4], "deflate", 1000)
    with pytest.raises(ReceiverError, match="larger than"):
        _decompress(gzip.compress(b"a") + gzip.compress(bytes(2000)), "gzip", 1000)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_request_items": 200_000},
        {"max_pending_items_per_org": 300_000},
        {"rate_limit_burst_items": 10},
        {"max_body_bytes_in_flight": 2048, "max_request_bytes": 4096},
    ],
)
def test_limits_that_cannot_all_hold_are_refused_at_start(settings: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        ReceiverSettings(**settings)  # type: ignore[arg-type]


def test_the_defaults_are_consistent() -> None:
    settings = ReceiverSettings()
    assert settings.max_request_items == 30_000
    assert settings.rate_limit_burst_items >= settings.max_request_items


def test_a_batch_is_released_once() -> None:
    queue = FairQueue(100, 100)
    first, second = _pending(KEY, 10), _pending(OTHER, 20)
    queue.push(first)
    queue.push(second)
    group = queue.take(100)
    queue.release(group[:1])  # settled while splitting a group
    queue.release(group)  # and the whole group again (a flusher that ended)
    assert queue.items == 0
