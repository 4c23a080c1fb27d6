"""The scripted OpenAI stand-in, through the real `openai` client (and raw httpx) over real HTTP."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from bot.dev.openai_server import Fault, ScriptedOpenAI, count_tokens


@pytest.fixture
def server(scripted_model: ScriptedOpenAI) -> ScriptedOpenAI:
    """A started stand-in with an empty script."""
    return scripted_model


def client(server: ScriptedOpenAI, **kwargs: object) -> openai.OpenAI:
    """The real openai client pointed at the stand-in."""
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(api_key="sk-test", base_url=server.base_url, **kwargs)


def ask(server: ScriptedOpenAI, model: str, text: str = "hi", **kwargs: object):
    """One chat completion request through the real client."""
    return client(server).chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kwargs)


def test_base_url_is_loopback_with_an_ephemeral_port(server: ScriptedOpenAI) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert server.base_url.endswith("/v1")
    assert int(server.base_url.split(":")[2].split("/")[0]) > 0


def test_answers_are_routed_per_model_in_order(server: ScriptedOpenAI) -> None:
    server.add("coder", "c1", "c2")
    server.add("tester", "t1")
    assert ask(server, "coder").choices[0].message.content == "c1"
    assert ask(server, "tester").choices[0].message.content == "t1"
    reply = ask(server, "coder")
    assert reply.choices[0].message.content == "c2"
    assert reply.model == "coder"
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason == "stop"


def test_script_given_to_the_constructor_is_used() -> None:
    with ScriptedOpenAI({"m": ["first", "second"]}) as server:
        assert [ask(server, "m").choices[0].message.content for _ in range(2)] == ["first", "second"]


def test_requests_are_recorded_in_order_and_per_model(server: ScriptedOpenAI) -> None:
    server.add("a", "x", "y")
    server.add("b", "z")
    ask(server, "a", "one", temperature=0.0)
    ask(server, "b", "two")
    ask(server, "a", "three")
    assert [request["model"] for request in server.requests] == ["a", "b", "a"]
    assert [request["messages"][0]["content"] for request in server.requests_for("a")] == ["one", "three"]
    assert server.requests[0]["temperature"] == 0.0
    assert server.requests_for("nobody") == []


def test_usage_counts_prompt_and_completion_tokens(server: ScriptedOpenAI) -> None:
    server.add("m", "a" * 10)
    messages = [{"role": "system", "content": "s" * 7}, {"role": "user", "content": "u" * 6}]
    usage = client(server).chat.completions.create(model="m", messages=messages).usage
    assert usage.prompt_tokens == count_tokens("s" * 13) == 4
    assert usage.completion_tokens == 3
    assert usage.total_tokens == 7


@pytest.mark.parametrize("limit_field", ["max_tokens", "max_completion_tokens"])
def test_answer_longer_than_the_token_limit_is_cut_with_finish_reason_length(
    server: ScriptedOpenAI, limit_field: str
) -> None:
    server.add("m", "0123456789" * 4)  # 10 tokens
    reply = ask(server, "m", **{limit_field: 3})
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == "012345678901"
    assert reply.usage.completion_tokens == 3


def test_answer_within_the_token_limit_is_whole(server: ScriptedOpenAI) -> None:
    server.add("m", "0123456789" * 4)
    reply = ask(server, "m", max_tokens=10)
    assert reply.choices[0].finish_reason == "stop"
    assert len(reply.choices[0].message.content) == 40


def test_truncate_at_cuts_every_answer() -> None:
    with ScriptedOpenAI({"m": ["x" * 100, "x" * 100]}, truncate_at=5) as server:
        first = ask(server, "m")
        second = ask(server, "m", max_tokens=2)
    assert (first.choices[0].finish_reason, first.choices[0].message.content) == ("length", "x" * 20)
    assert second.choices[0].message.content == "x" * 8


def test_exhausted_script_answers_400_naming_the_model(server: ScriptedOpenAI) -> None:
    server.add("m", "only")
    ask(server, "m")
    with pytest.raises(openai.BadRequestError) as caught:
        ask(server, "m")
    assert caught.value.status_code == 400
    assert "script exhausted for model m" in str(caught.value)
    with pytest.raises(openai.BadRequestError, match="script exhausted for model never-scripted"):
        ask(server, "never-scripted")


def test_default_answers_when_the_queue_is_empty() -> None:
    seen: list[dict] = []

    def echo(request: dict) -> str:
        seen.append(request)
        return "echo: " + request["messages"][-1]["content"]

    with ScriptedOpenAI({"m": ["scripted"]}, default=echo) as server:
        assert ask(server, "m", "a").choices[0].message.content == "scripted"
        assert ask(server, "m", "b").choices[0].message.content == "echo: b"
        assert ask(server, "other", "c").choices[0].message.content == "echo: c"
    assert [request["model"] for request in seen] == ["m", "other"]


def test_callable_answer_gets_the_request(server: ScriptedOpenAI) -> None:
    server.add("m", lambda request: f"{len(request['messages'])} messages")
    assert ask(server, "m").choices[0].message.content == "1 messages"


def test_callable_returning_none_answers_null_content(server: ScriptedOpenAI) -> None:
    server.add("m", lambda request: None)
    reply = ask(server, "m")
    assert reply.choices[0].message.content is None
    assert reply.usage.completion_tokens == 0


def test_callable_that_raises_answers_500_with_the_error(server: ScriptedOpenAI) -> None:
    server.add("m", lambda request: 1 / 0)
    with pytest.raises(openai.InternalServerError, match="ZeroDivisionError"):
        ask(server, "m")


def test_fault_answers_its_status_in_openai_error_shape(server: ScriptedOpenAI) -> None:
    server.add("m", Fault(503, body="overloaded"), Fault(404), "fine")
    with pytest.raises(openai.InternalServerError) as caught:
        ask(server, "m")
    assert caught.value.status_code == 503
    assert caught.value.body["message"] == "overloaded"
    with pytest.raises(openai.NotFoundError, match="scripted fault: HTTP 404"):
        ask(server, "m")
    assert ask(server, "m").choices[0].message.content == "fine"


def test_429_carries_retry_after_zero(server: ScriptedOpenAI) -> None:
    server.add("m", Fault(429))
    response = httpx.post(f"{server.base_url}/chat/completions", headers={"Authorization": "Bearer any"},
                          json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "0"
    assert response.json()["error"]["type"] == "rate_limit_exceeded"


def test_client_retries_a_429_at_once(server: ScriptedOpenAI) -> None:
    server.add("m", Fault(429), Fault(429), "made it")
    reply = client(server, max_retries=2).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "made it"
    assert len(server.requests) == 3


def test_delay_outlasting_the_client_timeout_times_out_and_the_next_request_is_served() -> None:
    server = ScriptedOpenAI({"m": [Fault(500, delay_s=30), "next"]}).start()
    try:
        with pytest.raises(openai.APITimeoutError):
            client(server, timeout=0.3).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert ask(server, "m").choices[0].message.content == "next"
    finally:
        server.stop()


def test_slow_success_fault_answers_its_body_after_the_delay(server: ScriptedOpenAI) -> None:
    server.add("m", Fault(200, delay_s=0.2, body="slow but fine"))
    started = time.monotonic()
    assert ask(server, "m").choices[0].message.content == "slow but fine"
    assert time.monotonic() - started >= 0.2


def test_missing_authorization_answers_401_and_any_key_is_accepted(server: ScriptedOpenAI) -> None:
    server.add("m", "ok")
    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    anonymous = httpx.post(f"{server.base_url}/chat/completions", json=payload)
    assert anonymous.status_code == 401
    assert "API key" in anonymous.json()["error"]["message"]
    assert server.requests == []  # refused requests neither count nor consume the script
    keyed = httpx.post(f"{server.base_url}/chat/completions", json=payload,
                       headers={"Authorization": "Bearer whatever"})
    assert keyed.status_code == 200
    assert keyed.json()["choices"][0]["message"]["content"] == "ok"


def test_streaming_is_refused_with_a_clear_message(server: ScriptedOpenAI) -> None:
    server.add("m", "kept for later")
    with pytest.raises(openai.BadRequestError, match="does not stream"):
        client(server).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert ask(server, "m").choices[0].message.content == "kept for later"


def test_malformed_requests_answer_400(server: ScriptedOpenAI) -> None:
    headers = {"Authorization": "Bearer k"}
    not_json = httpx.post(f"{server.base_url}/chat/completions", content=b"{", headers=headers)
    no_messages = httpx.post(f"{server.base_url}/chat/completions", json={"model": "m"}, headers=headers)
    assert (not_json.status_code, no_messages.status_code) == (400, 400)
    assert "messages" in no_messages.json()["error"]["message"]


def test_models_lists_the_scripted_model_names(server: ScriptedOpenAI) -> None:
    server.add("coder", "x")
    server.add("tester")
    assert sorted(model.id for model in client(server).models.list()) == ["coder", "tester"]
    assert httpx.get(f"{server.base_url}/models").status_code == 401


def test_a_one_megabyte_answer_arrives_whole(server: ScriptedOpenAI) -> None:
    big = "0123456789abcdef" * 65536
    server.add("m", big)
    reply = ask(server, "m")
    assert reply.choices[0].message.content == big
    assert reply.usage.completion_tokens == 262144
