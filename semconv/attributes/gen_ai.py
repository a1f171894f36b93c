# generated from semconv/model by semconv/_generate.py, do not edit
"""Attributes of the `gen_ai` namespace.

The OpenTelemetry GenAI attributes the backend maps to typed columns and cost line items
(semantic conventions v1.41.0, status Development upstream). Attributes not listed here are kept
as they are. Deprecated names are still accepted (see semconv.normalize).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
"""The unique identifier of the GenAI agent.

The upstream agent attribute, set on invoke_agent spans. AEOS agents also set aeos.agent.id on
their resource; the two may differ (an AEOS agent may invoke remote GenAI agents).

Type: string. Stability: development. Examples: `"asst_5j66UpCpwteGg4YSxUnt7lPY"`.
"""

GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
"""Human-readable name of the GenAI agent.

Type: string. Stability: development. Examples: `"Math Tutor"`.
"""

GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
"""The unique identifier of a conversation (session, thread).

Type: string. Stability: development. Examples: `"conv_5j66UpCpwteGg4YSxUnt7lPY"`.
"""

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
"""The name of the GenAI operation being performed.

Required upstream. The enum is open: other values are accepted and kept as they are; only the
well-known values are listed.

Type: enum. Stability: development. Examples: `"chat"`, `"execute_tool"`. Values:
GenAiOperationNameValues.
"""

GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
"""The GenAI provider as identified by the client or server instrumentation.

Required upstream; replaces gen_ai.system. The enum is open: other values are accepted and kept
as they are.

Type: enum. Stability: development. Examples: `"openai"`, `"anthropic"`. Values:
GenAiProviderNameValues.
"""

GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
"""The name of the model a request is being made to.

Type: string. Stability: development. Examples: `"gpt-4o"`, `"claude-sonnet-4-5"`.
"""

GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
"""The name of the model that generated the response.

Preferred over the request model for pricing, as it names the exact model version.

Type: string. Stability: development. Examples: `"gpt-4o-2024-08-06"`.
"""

GEN_AI_SYSTEM: Final = "gen_ai.system"
"""Deprecated name of the GenAI provider attribute.

Still emitted by instrumentations that have not opted in to the latest conventions.

Type: string. Stability: deprecated. Examples: `"openai"`.

Deprecated: use GEN_AI_PROVIDER_NAME (`gen_ai.provider.name`) instead.
"""

GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
"""Name of the tool utilized by the agent.

Type: string. Stability: development. Examples: `"web_search"`.
"""

GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
"""The number of input tokens written to a provider-managed cache.

Part of gen_ai.usage.input_tokens.

Type: int. Stability: development. Examples: `256`.
"""

GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
"""The number of input tokens served from a provider-managed cache.

Part of gen_ai.usage.input_tokens.

Type: int. Stability: development. Examples: `1024`.
"""

GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
"""Deprecated name of the output token count.

Type: int. Stability: deprecated. Examples: `180`.

Deprecated: use GEN_AI_USAGE_OUTPUT_TOKENS (`gen_ai.usage.output_tokens`) instead.
"""

GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
"""The number of tokens used in the GenAI input (prompt).

Includes all input tokens, cached ones too: gen_ai.usage.cache_read.input_tokens and
gen_ai.usage.cache_creation.input_tokens are parts of this count, not additions to it.

Type: int. Stability: development. Examples: `1200`.
"""

GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
"""The number of tokens used in the GenAI response (completion).

Includes gen_ai.usage.reasoning.output_tokens.

Type: int. Stability: development. Examples: `180`.
"""

GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
"""Deprecated name of the input token count.

Type: int. Stability: deprecated. Examples: `1200`.

Deprecated: use GEN_AI_USAGE_INPUT_TOKENS (`gen_ai.usage.input_tokens`) instead.
"""

GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
"""The number of output tokens used for reasoning.

Part of gen_ai.usage.output_tokens.

Type: int. Stability: development. Examples: `64`.
"""


class GenAiOperationNameValues(StrEnum):
    """Values of `gen_ai.operation.name`."""

    CHAT = "chat"
    """Chat completion."""

    GENERATE_CONTENT = "generate_content"
    """Multimodal content generation."""

    TEXT_COMPLETION = "text_completion"
    """Text completion (legacy completions APIs)."""

    EMBEDDINGS = "embeddings"
    """Embeddings."""

    RETRIEVAL = "retrieval"
    """Retrieval from a data source."""

    EXECUTE_TOOL = "execute_tool"
    """Execution of a tool."""

    CREATE_AGENT = "create_agent"
    """Creation of an agent."""

    INVOKE_AGENT = "invoke_agent"
    """Invocation of an agent."""


class GenAiProviderNameValues(StrEnum):
    """Values of `gen_ai.provider.name`."""

    OPENAI = "openai"
    """OpenAI."""

    ANTHROPIC = "anthropic"
    """Anthropic."""

    AWS_BEDROCK = "aws.bedrock"
    """AWS Bedrock."""

    AZURE_AI_OPENAI = "azure.ai.openai"
    """Azure OpenAI."""

    AZURE_AI_INFERENCE = "azure.ai.inference"
    """Azure AI Inference."""

    GCP_GEMINI = "gcp.gemini"
    """Gemini (Google AI Studio API)."""

    GCP_VERTEX_AI = "gcp.vertex_ai"
    """Vertex AI."""

    GCP_GEN_AI = "gcp.gen_ai"
    """Any Google generative AI endpoint."""

    COHERE = "cohere"
    """Cohere."""

    MISTRAL_AI = "mistral_ai"
    """Mistral AI."""

    GROQ = "groq"
    """Groq."""

    DEEPSEEK = "deepseek"
    """DeepSeek."""

    PERPLEXITY = "perplexity"
    """Perplexity."""

    X_AI = "x_ai"
    """xAI."""

    IBM_WATSONX_AI = "ibm.watsonx.ai"
    """IBM watsonx.ai."""
