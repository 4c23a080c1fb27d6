"""Settings: the one reader of the environment; a bad value names the variable to fix."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings


def test_docker_variables_are_read_into_the_settings_and_handed_to_the_sdk(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    assert load_settings().docker_environment() == {"DOCKER_HOST": "tcp://127.0.0.1:2375"}


def test_no_docker_variables_mean_the_local_socket(monkeypatch):
    for name in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(name, raising=False)
    assert load_settings().docker_environment() == {}


@pytest.mark.parametrize("variable, value", [
    ("AGENTCODER_MAX_ITERATIONS", "0"),
    ("AGENTCODER_MAX_ITERATIONS", "many"),
    ("AGENTCODER_LLM_TIMEOUT_S", "soon"),
])
def test_a_bad_value_names_its_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(f"{variable}: ")
