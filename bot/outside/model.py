"""The model client: the only module that talks to an OpenAI-compatible server.

Each agent role asks for its own configured model name. Retries and timeouts are the
`openai` client's own; whatever still fails becomes an `LLMError` with one line for the
user that names the setting to look at and never the API key.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import openai

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers (vLLM, Ollama, llama.cpp, the stand-in) take any key, but the client insists on one.
LOOPBACK_PLACEHOLDER_KEY = "unset"


CHARS_PER_TOKEN = 4


class Role(StrEnum):
    """The model-backed agents; each asks its own configured model."""

    PROGRAMMER = "programmer"
    TEST_DESIGNER = "test_designer"


def tokens_for(text: str) -> int:
    """About four characters a token: budgets and estimates where a server reports no usage."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class LLMError(Exception):
    """The model server could not give an answer; the message is one line for the user."""


@dataclass(frozen=True)
class Reply:
    """One answer of a model, with what it cost."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    truncated: bool  # the model hit the token limit (finish_reason "length")


class ModelClient:
    """Chat completions for the agent roles, each role on its configured model."""

    def __init__(self, models: Mapping[str, str], *, base_url: str | None = None, api_key: str | None = None,
                 timeout_s: float = 120.0, max_retries: int = 2):
        self.models = dict(models)
        self.base_url = base_url or DEFAULT_BASE_URL
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        if urlsplit(self.base_url).scheme not in {"http", "https"}:
            raise LLMError(f"OPENAI_BASE_URL must start with http:// or https://, not {shown(self.base_url)!r}")
        if not api_key:
            if not is_loopback(self.base_url):
                raise LLMError(f"set OPENAI_API_KEY: the model server at {shown(self.base_url)} needs an API key")
            api_key = LOOPBACK_PLACEHOLDER_KEY
        self._api_key = api_key
        import openai  # here, not at the top: its SDK takes most of a second to import, and `Reply`/`Role` users
        # (the CLI refusing a bad config, the reports) never talk to a model
        self._client = openai.OpenAI(api_key=api_key, base_url=self.base_url, timeout=timeout_s,
                                     max_retries=max_retries)

    @classmethod
    def from_settings(cls, settings) -> ModelClient:
        """The client for the configured server, with the programmer and test designer models."""
        return cls(
            {Role.PROGRAMMER: settings.programmer_model_name, Role.TEST_DESIGNER: settings.test_designer_model_name},
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
        )

    def complete(self, role: str, messages: list[dict], *, max_tokens: int | None = None,
                 temperature: float = 0.0) -> Reply:
        """Ask the role's model for one answer to `messages`."""
        import openai
        if role not in self.models:
            raise ValueError(f"unknown role {role!r}; known roles: {', '.join(sorted(self.models))}")
        model = self.models[role]
        limit = {} if max_tokens is None else {"max_tokens": max_tokens}
        started = time.monotonic()
        try:
            response = self._client.chat.completions.create(
                model=model, messages=messages, temperature=temperature, **limit)
        except openai.APIError as exc:
            raise LLMError(self._explain(exc, role, model)) from None
        seconds = time.monotonic() - started
        if not response.choices:
            raise LLMError(f"the model server at {shown(self.base_url)} answered {model} with no choices")
        choice = response.choices[0]
        text = choice.message.content or ""
        usage = response.usage
        prompt_tokens = usage.prompt_tokens if usage else estimate_tokens(messages)
        completion_tokens = usage.completion_tokens if usage else tokens_for(text)
        return Reply(text=text, model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                     seconds=seconds, truncated=choice.finish_reason == "length")

    def _explain(self, exc: openai.APIError, role: str, model: str) -> str:
        """One line saying what went wrong and which setting to look at."""
        import openai
        where = f"the model server at {shown(self.base_url)}"
        tries = f"{self.max_retries + 1} attempt{'s' if self.max_retries else ''}"
        if isinstance(exc, openai.APITimeoutError):
            return (f"{where} did not answer within {self.timeout_s:g} s ({tries}); "
                    f"raise AGENTCODER_LLM_TIMEOUT_S or use a faster model")
        if isinstance(exc, openai.APIConnectionError):
            return f"cannot reach {where}; check OPENAI_BASE_URL and that the server is running"
        if isinstance(exc, openai.AuthenticationError):
            return f"{where} refused the API key (HTTP 401); check OPENAI_API_KEY"
        if isinstance(exc, openai.NotFoundError):
            return (f"{where} has no model {model!r} (HTTP 404); "
                    f"check AGENTCODER_{role.upper()}_MODEL or AGENTCODER_MODEL")
        detail = self._detail(exc)
        if isinstance(exc, openai.RateLimitError):
            return f"{where} is rate limiting requests (HTTP 429, {tries}){detail}; try again later"
        if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
            return f"{where} failed (HTTP {exc.status_code}, {tries}){detail}"
        if isinstance(exc, openai.APIStatusError):
            return f"{where} rejected the request for {model} (HTTP {exc.status_code}){detail}"
        return f"{where} sent an answer that is not a chat completion{detail}"

    def _detail(self, exc: openai.APIError) -> str:
        """The server's own error message, as one short line without the key."""
        body = exc.body
        message = body.get("message") if isinstance(body, dict) else None
        text = " ".join(str(message or exc.message or "").split())
        if self._api_key != LOOPBACK_PLACEHOLDER_KEY:
            text = text.replace(self._api_key, "***")
        if len(text) > 200:
            text = text[:199] + "…"
        return f": {text}" if text else ""


def is_loopback(url: str) -> bool:
    """True when the URL's host is this machine (localhost or a loopback address)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shown(url: str) -> str:
    """The URL as it may appear in messages: without any user:password part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def estimate_tokens(messages: list[dict]) -> int:
    """About four characters a token, for servers that report no usage (budgets must still bind)."""
    return tokens_for("".join(str(message.get("content") or "") for message in messages))
