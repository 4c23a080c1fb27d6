"""The model client, through the real `openai` client over real HTTP to the scripted stand-in."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.dev.openai_server import Fault, ScriptedOpenAI
from bot.outside.model import LLMError, ModelClient, Reply, is_loopback
from tests.conftest import free_port

KEY = "sk-test-7f3a9c1e5b"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def server(scripted_model: ScriptedOpenAI) -> ScriptedOpenAI:
    """A started stand-in with an empty script."""
    return scripted_model


def model_client(server: ScriptedOpenAI, **kwargs: object) -> ModelClient:
    """A client for both roles, each on its own model name, against the stand-in."""
    kwargs.setdefault("api_key", KEY)
    return ModelClient({"programmer": "coder-model", "test_designer": "tester-model"},
                       base_url=server.base_url, **kwargs)


def test_each_role_asks_its_own_model(server: ScriptedOpenAI) -> None:
    server.add("coder-model", "the fix")
    server.add("tester-model", "the tests")
    llm = model_client(server)
    tests = llm.complete("test_designer", HELLO)
    fix = llm.complete("programmer", HELLO)
    assert (fix.text, fix.model) == ("the fix", "coder-model")
    assert (tests.text, tests.model) == ("the tests", "tester-model")
    assert [request["model"] for request in server.requests] == ["tester-model", "coder-model"]


def test_reply_carries_usage_time_and_no_truncation(server: ScriptedOpenAI) -> None:
    server.add("coder-model", "x" * 40)
    messages = [{"role": "system", "content": "s" * 20}, {"role": "user", "content": "u" * 20}]
    reply = model_client(server).complete("programmer", messages)
    assert isinstance(reply, Reply)
    assert (reply.prompt_tokens, reply.completion_tokens) == (10, 10)
    assert reply.truncated is False
    assert reply.seconds > 0


def test_request_carries_messages_temperature_and_token_limit(server: ScriptedOpenAI) -> None:
    server.add("coder-model", "a", "b")
    llm = model_client(server)
    llm.complete("programmer", HELLO)
    llm.complete("programmer", HELLO, max_tokens=50, temperature=0.7)
    first, second = server.requests_for("coder-model")
    assert first["messages"] == HELLO
    assert first["temperature"] == 0.0
    assert "max_tokens" not in first
    assert (second["max_tokens"], second["temperature"]) == (50, 0.7)


def test_answer_cut_at_the_token_limit_is_marked_truncated(server: ScriptedOpenAI) -> None:
    server.add("coder-model", "y" * 100)
    reply = model_client(server).complete("programmer", HELLO, max_tokens=5)
    assert reply.truncated is True
    assert reply.text == "y" * 20
    assert reply.completion_tokens == 5


def test_rate_limit_then_success_is_retried(server: ScriptedOpenAI) -> None:
    server.add("coder-model", Fault(429), "after the wait")
    reply = model_client(server, max_retries=2).complete("programmer", HELLO)
    assert reply.text == "after the wait"
    assert len(server.requests) == 2


def test_persistent_rate_limit_is_one_clear_line(server: ScriptedOpenAI) -> None:
    server.add("coder-model", *[Fault(429, body="Rate limit reached for requests")] * 3)
    with pytest.raises(LLMError) as caught:
        model_client(server, max_retries=2).complete("programmer", HELLO)
    message = str(caught.value)
    assert "HTTP 429" in message and "rate limit" in message.lower() and "3 attempts" in message
    assert server.base_url in message
    assert "\n" not in message
    assert len(server.requests) == 3


def test_persistent_server_error_names_status_and_detail(server: ScriptedOpenAI) -> None:
    server.add("coder-model", Fault(500, body="backend exploded"), Fault(502, body="backend\nexploded again"))
    with pytest.raises(LLMError) as caught:
        model_client(server, max_retries=1).complete("programmer", HELLO)
    assert str(caught.value) == (f"the model server at {server.base_url} failed (HTTP 502, 2 attempts): "
                                 "backend exploded again")
    assert len(server.requests) == 2


def test_timeout_fails_quickly_naming_seconds_and_setting(server: ScriptedOpenAI) -> None:
    server.add("coder-model", Fault(200, delay_s=10, body="too late"), Fault(200, delay_s=10, body="too late"))
    with pytest.raises(LLMError) as caught:
        model_client(server, timeout_s=0.5, max_retries=1).complete("programmer", HELLO)
    message = str(caught.value)
    assert "0.5 s" in message and "AGENTCODER_LLM_TIMEOUT_S" in message and "2 attempts" in message
    assert len(server.requests) == 2


def test_unreachable_server_names_the_base_url() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    llm = ModelClient({"programmer": "m"}, base_url=base_url, api_key=KEY, max_retries=0)
    with pytest.raises(LLMError) as caught:
        llm.complete("programmer", HELLO)
    assert str(caught.value) == (f"cannot reach the model server at {base_url}; "
                                 "check OPENAI_BASE_URL and that the server is running")


def test_credentials_in_the_base_url_are_not_shown() -> None:
    port = free_port()
    llm = ModelClient({"programmer": "m"}, base_url=f"http://user:hunter2@127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(LLMError) as caught:
        llm.complete("programmer", HELLO)
    assert f"http://127.0.0.1:{port}/v1" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_refused_key_names_the_setting_but_not_the_key(server: ScriptedOpenAI) -> None:
    server.add("coder-model", Fault(401, body=f"Incorrect API key provided: {KEY}"))
    with pytest.raises(LLMError) as caught:
        model_client(server).complete("programmer", HELLO)
    assert "HTTP 401" in str(caught.value) and "OPENAI_API_KEY" in str(caught.value)
    assert KEY not in str(caught.value)


def test_server_message_echoing_the_key_is_scrubbed(server: ScriptedOpenAI) -> None:
    server.add("coder-model", Fault(400, body=f"bad request from key {KEY}"))
    with pytest.raises(LLMError) as caught:
        model_client(server).complete("programmer", HELLO)
    assert "HTTP 400" in str(caught.value) and "bad request from key ***" in str(caught.value)
    assert KEY not in str(caught.value)


def test_unknown_model_names_the_model_and_the_setting(server: ScriptedOpenAI) -> None:
    server.add("tester-model", Fault(404, body="The model does not exist"))
    with pytest.raises(LLMError) as caught:
        model_client(server).complete("test_designer", HELLO)
    message = str(caught.value)
    assert "'tester-model'" in message and "HTTP 404" in message
    assert "AGENTCODER_TEST_DESIGNER_MODEL" in message and "AGENTCODER_MODEL" in message


def test_exhausted_script_is_a_rejected_request(server: ScriptedOpenAI) -> None:
    with pytest.raises(LLMError, match=r"rejected the request for coder-model \(HTTP 400\): script exhausted"):
        model_client(server).complete("programmer", HELLO)


def test_empty_and_null_answers_are_empty_text(server: ScriptedOpenAI) -> None:
    server.add("coder-model", "", lambda request: None)
    llm = model_client(server)
    empty, null = llm.complete("programmer", HELLO), llm.complete("programmer", HELLO)
    assert (empty.text, empty.completion_tokens, empty.truncated) == ("", 0, False)
    assert (null.text, null.completion_tokens) == ("", 0)


def test_a_one_megabyte_answer_arrives_whole(server: ScriptedOpenAI) -> None:
    big = "def f():\n    return 1\n" * 48_000
    server.add("coder-model", big)
    reply = model_client(server).complete("programmer", HELLO)
    assert len(big) > 1_000_000
    assert reply.text == big


def test_unknown_role_is_a_value_error(server: ScriptedOpenAI) -> None:
    with pytest.raises(ValueError, match="unknown role 'reviewer'"):
        model_client(server).complete("reviewer", HELLO)
    assert server.requests == []


@pytest.mark.parametrize("base_url", [None, "https://models.example.invalid/v1", "http://10.0.0.1:8000/v1"])
def test_missing_key_for_a_remote_server_is_refused_before_any_request(base_url: str | None) -> None:
    with pytest.raises(LLMError) as caught:
        ModelClient({"programmer": "m"}, base_url=base_url, api_key=None)
    assert str(caught.value).startswith("set OPENAI_API_KEY")


def test_missing_key_for_a_loopback_server_is_fine(server: ScriptedOpenAI) -> None:
    server.add("coder-model", "keyless")
    # The stand-in answers 401 without an Authorization header, so this proves a placeholder key was sent.
    assert model_client(server, api_key=None).complete("programmer", HELLO).text == "keyless"


def test_base_url_without_a_scheme_is_refused() -> None:
    with pytest.raises(LLMError, match="OPENAI_BASE_URL must start with http"):
        ModelClient({"programmer": "m"}, base_url="localhost:8000/v1", api_key=KEY)


@pytest.mark.parametrize(("url", "loopback"), [
    ("http://127.0.0.1:8000/v1", True), ("http://localhost:11434/v1", True), ("http://[::1]:8000/v1", True),
    ("http://127.8.0.1/v1", True), ("http://10.0.0.1/v1", False), ("https://api.openai.com/v1", False),
    ("http://localhost.example.com/v1", False),
])
def test_is_loopback(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


def test_from_settings_uses_the_configured_models_server_and_limits(server: ScriptedOpenAI) -> None:
    settings = load_settings(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=KEY, model="shared-model",
                             programmer_model="coder-model", llm_timeout_s=7.5, llm_max_retries=0)
    llm = ModelClient.from_settings(settings)
    assert llm.models == {"programmer": "coder-model", "test_designer": "shared-model"}
    assert (llm.base_url, llm.timeout_s, llm.max_retries) == (server.base_url, 7.5, 0)
    server.add("shared-model", "from settings")
    assert llm.complete("test_designer", HELLO).text == "from settings"
