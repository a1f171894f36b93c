"""Receiver-side normalisation: alias precedence, value coercion, subsystem, heartbeats."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from semconv._model import load_model
from semconv.normalize import (
    GEN_AI_ALIASES,
    MAX_COUNT,
    GenAiUsage,
    as_amount,
    as_count,
    as_text,
    gen_ai_usage,
    heartbeat_status,
    subsystem_of,
)

MODEL_DIR = Path(__file__).resolve().parents[2] / "semconv" / "model"


# --- alias precedence --------------------------------------------------------------------


def test_current_names_win_over_deprecated_ones() -> None:
    usage = gen_ai_usage(
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.system": "openai",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.prompt_tokens": 999,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.usage.completion_tokens": 888,
        }
    )
    assert usage is not None
    assert (usage.provider, usage.input_tokens, usage.output_tokens) == ("anthropic", 100, 20)


def test_deprecated_names_are_used_when_current_ones_are_missing() -> None:
    usage = gen_ai_usage(
        {
            "gen_ai.system": "openai",
            "gen_ai.usage.prompt_tokens": 12,
            "gen_ai.usage.completion_tokens": 3,
            "gen_ai.request.model": "gpt-4o",
        }
    )
    assert usage == GenAiUsage(
        provider="openai", request_model="gpt-4o", input_tokens=12, output_tokens=3
    )


def test_openinference_names_are_the_last_resort() -> None:
    only_openinference = {
        "llm.model_name": "gpt-4o-mini",
        "llm.provider": "openai",
        "llm.token_count.prompt": 50,
        "llm.token_count.completion": 7,
        "llm.token_count.prompt_details.cache_read": 32,
        "llm.token_count.prompt_details.cache_write": 8,
        "llm.token_count.completion_details.reasoning": 2,
    }
    usage = gen_ai_usage(only_openinference)
    assert usage == GenAiUsage(
        provider="openai",
        request_model="gpt-4o-mini",
        input_tokens=50,
        output_tokens=7,
        cache_read_tokens=32,
        cache_creation_tokens=8,
        reasoning_tokens=2,
    )
    mixed = gen_ai_usage(
        {
            **only_openinference,
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 60,
            "gen_ai.system": "azure.ai.openai",
        }
    )
    assert mixed is not None
    assert (mixed.request_model, mixed.input_tokens, mixed.provider) == (
        "gpt-4o",
        60,
        "azure.ai.openai",
    )


def test_cache_token_names_current_then_pre_standard() -> None:
    attrs: dict[str, object] = {
        "gen_ai.usage.cache_read_input_tokens": 11,
        "gen_ai.usage.cache_creation_input_tokens": 22,
    }
    usage = gen_ai_usage(attrs)
    assert usage is not None
    assert (usage.cache_read_tokens, usage.cache_creation_tokens) == (11, 22)
    attrs["gen_ai.usage.cache_read.input_tokens"] = 1
    attrs["gen_ai.usage.cache_creation.input_tokens"] = 2
    usage = gen_ai_usage(attrs)
    assert usage is not None
    assert (usage.cache_read_tokens, usage.cache_creation_tokens) == (1, 2)


def test_an_unusable_current_value_falls_back_to_the_deprecated_one() -> None:
    usage = gen_ai_usage(
        {
            "gen_ai.usage.input_tokens": -1,
            "gen_ai.usage.prompt_tokens": 40,
            "gen_ai.usage.output_tokens": True,
            "gen_ai.usage.completion_tokens": "5",
            "gen_ai.provider.name": "  ",
            "gen_ai.system": "openai",
        }
    )
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.provider) == (40, 5, "openai")


def test_every_deprecated_gen_ai_attribute_is_an_alias_after_its_replacement() -> None:
    gen_ai = next(ns for ns in load_model(MODEL_DIR) if ns.name == "gen_ai")
    deprecated = [a for a in gen_ai.attributes if a.stability == "deprecated"]
    assert deprecated
    for attribute in deprecated:
        names = next(n for n in GEN_AI_ALIASES.values() if attribute.id in n)
        assert names.index(attribute.replaced_by or "") < names.index(attribute.id)


def test_the_alias_table_covers_every_field_with_a_current_name_first() -> None:
    fields = {f.name for f in dataclasses.fields(GenAiUsage)}
    assert set(GEN_AI_ALIASES) == fields
    current = {
        a.id for ns in load_model(MODEL_DIR) for a in ns.attributes if a.stability != "deprecated"
    }
    for field, names in GEN_AI_ALIASES.items():
        assert names[0] in current, field
        assert len(names) == len(set(names)), field


# --- missing values ----------------------------------------------------------------------


def test_no_mapped_attribute_gives_none() -> None:
    assert gen_ai_usage({}) is None
    assert gen_ai_usage({"http.request.method": "GET", "mosaic.task.id": "t"}) is None


def test_only_unusable_values_give_none() -> None:
    attrs = {"gen_ai.usage.input_tokens": "lots", "gen_ai.request.model": 42, "aeos.cost.usd": -1}
    assert gen_ai_usage(attrs) is None


def test_a_tool_span_has_an_operation_but_no_usage() -> None:
    usage = gen_ai_usage({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"})
    assert usage == GenAiUsage(operation="execute_tool")
    assert not usage.has_usage
    assert usage.model is None


def test_response_model_is_preferred_for_pricing_and_cost_is_explicit() -> None:
    usage = gen_ai_usage(
        {
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "aeos.cost.usd": "0.0125",
        }
    )
    assert usage is not None
    assert usage.model == "gpt-4o-2024-08-06"
    assert usage.explicit_cost_usd == pytest.approx(0.0125)
    assert usage.has_usage
    assert GenAiUsage(request_model="m").model == "m"


def test_usage_is_frozen() -> None:
    usage = GenAiUsage(input_tokens=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        usage.input_tokens = 2  # type: ignore[misc]


# --- value coercion ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12),
        (0, 0),
        ("12", 12),
        (" 12 ", 12),
        (12.0, 12),
        (MAX_COUNT, MAX_COUNT),
        (12.5, None),
        (-3, None),
        ("-3", None),
        ("+3", None),
        ("1e3", None),
        ("12 tokens", None),
        ("", None),
        ("١٢", None),  # Arabic-Indic digits: str.isdigit() would accept them
        (True, None),
        (False, None),
        (MAX_COUNT + 1, None),
        (str(MAX_COUNT + 1), None),
        (math.nan, None),
        (math.inf, None),
        (None, None),
        (b"12", None),
        ([12], None),
    ],
)
def test_as_count(value: object, expected: int | None) -> None:
    assert as_count(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, 0.5),
        (2, 2.0),
        (0, 0.0),
        ("0.0042", 0.0042),
        ("1e-3", 0.001),
        (".5", 0.5),
        (-0.01, None),
        ("-1", None),
        (math.nan, None),
        (math.inf, None),
        ("nan", None),
        ("inf", None),
        ("1_000", None),
        (True, None),
        ("cheap", None),
        (None, None),
    ],
)
def test_as_amount(value: object, expected: float | None) -> None:
    result = as_amount(value)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_as_text() -> None:
    assert as_text(" gpt-4o ") == "gpt-4o"
    assert as_text("") is None
    assert as_text("   ") is None
    assert as_text(4) is None
    assert as_text(None) is None


def test_numeric_strings_are_coerced_in_usage() -> None:
    usage = gen_ai_usage({"gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": 3.0})
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (12, 3)
    assert isinstance(usage.output_tokens, int)


# --- subsystem ---------------------------------------------------------------------------


def test_subsystem_from_the_resource() -> None:
    assert subsystem_of({"aeos.subsystem": "DAMN"}, {"uce.context.id": "c"}) == "DAMN"


def test_subsystem_on_the_span_overrides_the_resource() -> None:
    assert subsystem_of({"aeos.subsystem": "MOSAIC"}, {"aeos.subsystem": "UCE"}) == "UCE"


def test_subsystem_values_are_case_insensitive_and_unknown_ones_ignored() -> None:
    assert subsystem_of({"aeos.subsystem": " uce "}, {}) == "UCE"
    assert subsystem_of({"aeos.subsystem": "BILLING"}, {"damn.queue.name": "q"}) == "DAMN"
    assert subsystem_of({"aeos.subsystem": 3}, {}) == "SYSTEM"


@pytest.mark.parametrize(
    ("span_attrs", "expected"),
    [
        ({"mosaic.task_run.id": "r"}, "MOSAIC"),
        ({"damn.agent.status": "online"}, "DAMN"),
        ({"uce.operation.name": "read"}, "UCE"),
        ({"mosaic.task_run.id": "r", "uce.context.id": "c"}, "UCE"),
        ({"mosaic.task_run.id": "r", "damn.queue.name": "q"}, "DAMN"),
        ({"gen_ai.operation.name": "chat"}, "SYSTEM"),
        ({}, "SYSTEM"),
    ],
)
def test_subsystem_inferred_from_namespaces(span_attrs: dict[str, object], expected: str) -> None:
    assert subsystem_of({"service.name": "x"}, span_attrs) == expected


def test_subsystem_inferred_from_the_span_before_the_resource() -> None:
    assert subsystem_of({"mosaic.plan.id": "p"}, {"uce.context.id": "c"}) == "UCE"
    assert subsystem_of({"mosaic.plan.id": "p"}, None) == "MOSAIC"
    assert subsystem_of({}) == "SYSTEM"


# --- heartbeats --------------------------------------------------------------------------


def test_heartbeat_status_from_the_event_name() -> None:
    assert heartbeat_status("damn.agent.heartbeat", {"damn.agent.status": "degraded"}) == "degraded"
    assert heartbeat_status("damn.agent.heartbeat", {"damn.agent.status": "OFFLINE"}) == "offline"


def test_heartbeat_from_the_legacy_event_name_attribute() -> None:
    attrs = {"event.name": "damn.agent.heartbeat", "damn.agent.status": "online"}
    assert heartbeat_status("", attrs) == "online"
    assert heartbeat_status(None, attrs) == "online"
    assert heartbeat_status("something.else", attrs) is None


def test_a_heartbeat_without_a_usable_status_means_online() -> None:
    assert heartbeat_status("damn.agent.heartbeat", {}) == "online"
    assert heartbeat_status("damn.agent.heartbeat", {"damn.agent.status": "busy"}) == "online"
    assert heartbeat_status("damn.agent.heartbeat", {"damn.agent.status": 1}) == "online"


def test_other_records_are_not_heartbeats() -> None:
    assert heartbeat_status("damn.agent.heartbeats", {"damn.agent.status": "online"}) is None
    assert heartbeat_status(None, {"damn.agent.status": "online"}) is None
