"""Cost in dollars: per-model prices from AGENTCODER_MODEL_PRICES, applied per agent; unknown without a price."""

from __future__ import annotations

import pytest

from bot.app.reports import failure_report, pr_body, usage_table
from bot.config import ConfigError, ModelPrice, load_settings
from bot.loop.outcome import Outcome, Stop, Usage
from bot.outside.model import Reply

PRICES = {"gpt-4o-mini": ModelPrice(input=0.15, output=0.60), "big": ModelPrice(input=5.0, output=15.0)}


def reply(model: str, prompt: int, completion: int) -> Reply:
    return Reply("text", model, prompt, completion, 0.5, False)


def test_usage_is_priced_per_model_in_dollars_per_million_tokens():
    usage = Usage()
    usage.add(reply("gpt-4o-mini", 10_000, 2_000), PRICES)
    usage.add(reply("gpt-4o-mini", 10_000, 2_000), PRICES)
    assert usage.cost_usd == pytest.approx(2 * (10_000 * 0.15 + 2_000 * 0.60) / 1e6)
    assert (usage.model, usage.calls, usage.total_tokens) == ("gpt-4o-mini", 2, 24_000)


def test_a_model_without_a_price_makes_the_cost_unknown_but_tokens_are_still_counted():
    outcome = Outcome()
    outcome.tokens["programmer"].add(reply("gpt-4o-mini", 2_000, 500), PRICES)
    outcome.tokens["test_designer"].add(reply("local-llama", 3_000, 700), PRICES)
    assert outcome.tokens["test_designer"].cost_usd is None
    assert outcome.tokens["test_designer"].total_tokens == 3_700 and outcome.total_tokens == 6_200
    assert outcome.cost_usd is None and outcome.to_json()["cost_usd"] is None
    table = usage_table(outcome)
    assert "| test designer | 1 | 3000 | 700 | 0.5 s | `local-llama` | unknown |" in table
    assert "| programmer | 1 | 2000 | 500 | 0.5 s | `gpt-4o-mini` | $0.0006 |" in table
    assert "6200 tokens in all, cost unknown (no price configured for local-llama)." in table


def test_merging_keeps_every_model_and_an_unknown_cost_stays_unknown():
    total, priced, unpriced = Usage(), Usage(), Usage()
    priced.add(reply("big", 1_000_000, 0), PRICES)
    unpriced.add(reply("other", 1, 1), PRICES)
    total.merge(priced)
    assert total.cost_usd == pytest.approx(5.0)
    total.merge(unpriced)
    assert (total.model, total.cost_usd, total.calls) == ("big, other", None, 2)


def test_pr_body_and_status_comments_carry_the_cost_when_prices_are_known():
    outcome = Outcome(stop=Stop.RESOLVED, stop_reason="resolved in iteration 1", issue_number=3)
    outcome.tokens["programmer"].add(reply("big", 2_000, 400), PRICES)
    outcome.tokens["test_designer"].add(reply("gpt-4o-mini", 1_000, 1_000), PRICES)
    body = pr_body(outcome)
    tokens = body.split("## Tokens and time\n", 1)[1]
    assert "| programmer | 1 | 2000 | 400 | 0.5 s | `big` | $0.0160 |" in tokens
    assert "| test designer | 1 | 1000 | 1000 | 0.5 s | `gpt-4o-mini` | $0.0008 |" in tokens
    assert "cost $0.0168." in tokens
    outcome.stopped(Stop.NOT_RESOLVED, "not resolved after 5 iterations")
    assert failure_report(outcome, None).startswith(
        "AgentCoder could not resolve this issue: not resolved after 5 iterations (cost $0.0168).")


def test_prices_are_read_from_json_in_the_environment(monkeypatch):
    monkeypatch.delenv("AGENTCODER_MODEL_PRICES", raising=False)
    monkeypatch.delenv("AGENTCODER_COST_BUDGET_USD", raising=False)
    assert load_settings().model_prices == {} and load_settings().cost_budget_usd is None
    monkeypatch.setenv("AGENTCODER_MODEL_PRICES", '{"gpt-4o-mini": {"input": 0.15, "output": 0.6}}')
    monkeypatch.setenv("AGENTCODER_COST_BUDGET_USD", "0.5")
    settings = load_settings()
    assert settings.model_prices == {"gpt-4o-mini": ModelPrice(input=0.15, output=0.6)}
    assert settings.cost_budget_usd == 0.5


@pytest.mark.parametrize("prices, message", [
    ('{"gpt": {"input": 1, "output": 2}', "AGENTCODER_MODEL_PRICES: not valid JSON"),
    ('{"gpt": {"input": 1}}', "AGENTCODER_MODEL_PRICES: gpt.output: Field required"),
    ('{"gpt": {"input": -1, "output": 2}}', "AGENTCODER_MODEL_PRICES: gpt.input: Input should be greater than"),
    ('{"gpt": {"input": 1, "output": 2, "currency": "EUR"}}', "AGENTCODER_MODEL_PRICES: gpt.currency"),
    ('[0.15, 0.6]', "AGENTCODER_MODEL_PRICES: Input should be a valid dictionary"),
], ids=["not-json", "missing-output", "negative", "unknown-key", "a-list"])
def test_malformed_prices_exit_2_with_one_line_naming_the_setting(cli, prices, message):
    done = cli("check", ".", env={"AGENTCODER_MODEL_PRICES": prices})
    assert done.returncode == 2
    assert done.stderr.startswith(f"agentcoder: {message}") and done.stderr.count("\n") == 1, done.stderr
    assert "(US dollars per million tokens)" in done.stderr and "Traceback" not in done.stderr


def test_a_cost_budget_of_zero_or_less_is_refused():
    with pytest.raises(ConfigError, match="AGENTCODER_COST_BUDGET_USD: Value error, must be more than 0"):
        load_settings(cost_budget_usd="0")
