"""A scripted OpenAI-compatible server on 127.0.0.1, for tests and the offline playground.

Each model name has its own queue of answers, consumed in order: a text, a callable that
builds the text from the request, or a `Fault` (an HTTP error, optionally after a delay).
The responses have the shape of OpenAI's chat completions, so the real `openai` client
parses them; tokens are counted as ceil(characters / 4).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bot.dev.serving import ThreadedServer
from bot.outside.model import tokens_for

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
               429: "rate_limit_exceeded"}


@dataclass
class Fault:
    """A scripted failure instead of an answer (a status below 400 answers `body` as the content)."""

    status: int = 500  # 429 adds Retry-After: 0
    delay_s: float = 0.0  # sleep before answering (for client timeouts)
    body: str = ""  # the error message; empty: a default naming the status


# A callable gets the request JSON and returns the content (None: a null content, as some servers send).
Answer = str | Fault | Callable[[dict], str]


def count_tokens(text: str) -> int:
    """The stand-in's deterministic token count: one token per four characters, rounded up."""
    return tokens_for(text)


def error_response(status: int, message: str) -> JSONResponse:
    """An error in OpenAI's JSON shape; 429 tells the client to retry at once."""
    body = {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error" if status >= 500 else
                                                                  "invalid_request_error"),
                      "param": None, "code": None}}
    # The openai client ignores `Retry-After: 0` (it wants a delay above zero) and falls back to
    # exponential backoff, so the millisecond header it reads first keeps retries fast.
    headers = {"Retry-After": "0", "retry-after-ms": "1"} if status == 429 else None
    return JSONResponse(body, status_code=status, headers=headers)


def completion(model: str, request: dict, content: str | None) -> dict:
    """A chat completion carrying `content`, cut to the request's token limit if it has one."""
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    finish_reason = "stop"
    if content is not None and isinstance(limit, int) and limit < count_tokens(content):
        content, finish_reason = content[: limit * 4], "length"
    prompt = "".join(message_text(message) for message in request.get("messages", []))
    prompt_tokens, completion_tokens = count_tokens(prompt), count_tokens(content or "")
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def message_text(message: object) -> str:
    """The text of one request message (string content, or the text parts of a list)."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


class ScriptedOpenAI:
    """An OpenAI-compatible server answering each model name from its own script."""

    def __init__(self, script: Mapping[str, Sequence[Answer]] | None = None, *,
                 default: Callable[[dict], str] | None = None, truncate_at: int | None = None):
        self.default = default
        self.truncate_at = truncate_at  # a token limit applied to every answer, as if the request asked it
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Answer]] = {}
        self._requests: list[dict] = []
        self._web: ThreadedServer | None = None
        self.base_url = ""
        for model, answers in (script or {}).items():
            self.add(model, *answers)
        self.app = self._build_app()

    def add(self, model: str, *answers: Answer) -> None:
        """Append answers to this model's queue."""
        with self._lock:
            self._queues.setdefault(model, deque()).extend(answers)

    @property
    def requests(self) -> list[dict]:
        """Every chat completion request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[dict]:
        """The requests that asked for this model."""
        return [request for request in self.requests if request.get("model") == model]

    def start(self) -> ScriptedOpenAI:
        """Serve on an ephemeral port of 127.0.0.1 in a background thread; returns self."""
        self._web = ThreadedServer(self.app, name="scripted-openai", graceful_shutdown_s=1).start()
        self.base_url = f"{self._web.url}/v1"
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        if self._web is not None:
            self._web.stop()
        self._web = None

    def __enter__(self) -> ScriptedOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _next_answer(self, model: str) -> Answer | None:
        with self._lock:
            queue = self._queues.get(model)
            if queue:
                return queue.popleft()
        return self.default

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="scripted OpenAI stand-in")

        @app.get("/v1/models")
        async def list_models(request: Request) -> JSONResponse:
            if not request.headers.get("authorization"):
                return missing_key()
            with self._lock:
                names = list(self._queues)
            return JSONResponse({"object": "list", "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "agentcoder-standin"} for name in names]})

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request) -> JSONResponse:
            if not request.headers.get("authorization"):
                return missing_key()
            try:
                body = await request.json()
            except ValueError:
                return error_response(400, "the request body is not JSON")
            if not isinstance(body, dict):
                return error_response(400, "the request body must be a JSON object")
            with self._lock:
                self._requests.append(body)
            if body.get("stream"):
                return error_response(400, "the scripted OpenAI stand-in does not stream; send stream=false")
            model = body.get("model")
            if not isinstance(model, str) or not isinstance(body.get("messages"), list):
                return error_response(400, "the request needs 'model' (a string) and 'messages' (a list)")
            answer = self._next_answer(model)
            if answer is None:
                return error_response(400, f"script exhausted for model {model}")
            if isinstance(answer, Fault):
                if not await sleep_unless_disconnected(request, answer.delay_s):
                    return error_response(499, "client went away")
                if answer.status < 400:
                    return JSONResponse(self._completion(model, body, answer.body), status_code=answer.status)
                return error_response(answer.status, answer.body or f"scripted fault: HTTP {answer.status}")
            if callable(answer):
                try:
                    answer = answer(body)
                except Exception as exc:  # a broken script should read as a server error, not hang the test
                    return error_response(500, f"scripted answer raised {type(exc).__name__}: {exc}")
            return JSONResponse(self._completion(model, body, answer))

        return app

    def _completion(self, model: str, request: dict, content: str | None) -> dict:
        if self.truncate_at is not None:
            limits = [value for value in (request.get("max_completion_tokens"), request.get("max_tokens"))
                      if isinstance(value, int)]
            request = {**request, "max_tokens": min([self.truncate_at, *limits])}
            request.pop("max_completion_tokens", None)
        return completion(model, request, content)


def missing_key() -> JSONResponse:
    """What OpenAI answers to a request without an Authorization header."""
    return error_response(401, "You didn't provide an API key. Provide it in an Authorization header "
                               "(Authorization: Bearer YOUR_KEY).")


async def sleep_unless_disconnected(request: Request, seconds: float) -> bool:
    """Sleep up to `seconds`; False as soon as the client has hung up (so shutdown stays quick)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(left, 0.05))
        if await request.is_disconnected():
            return False
    return True
