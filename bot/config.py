"""Settings: the only reader of the environment.

Every setting the bot knows is declared here, read once into one typed `Settings`
object at start-up, and passed inward. Nothing else in the project calls `os.environ`.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

PRICES_EXAMPLE = '{"gpt-4o-mini": {"input": 0.15, "output": 0.60}}'


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the setting to fix."""


class ModelPrice(BaseModel):
    """What one model costs, in US dollars per million input (prompt) and output (completion) tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: NonNegativeFloat
    output: NonNegativeFloat

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollars for this many tokens."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


class Settings(BaseSettings):
    """Everything the bot reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="AGENTCODER_", extra="ignore", frozen=True, populate_by_name=True)

    # GitHub App
    github_app_id: str | None = None
    github_private_key: str | None = None
    github_private_key_path: Path | None = None
    webhook_secret: str | None = None
    github_api_url: str = "https://api.github.com"
    github_url: str = "https://github.com"  # where `agentcoder register` sends the manifest (GHES, the stand-in)
    trigger_label: str = "agentcoder"
    admin_token: str | None = None

    # Models (OPENAI_API_KEY / OPENAI_BASE_URL are read below, without our prefix)
    openai_api_key: str | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    model: str = "gpt-4o-mini"
    programmer_model: str | None = None
    test_designer_model: str | None = None
    llm_timeout_s: float = 120.0
    llm_max_retries: int = 2

    # Loop limits
    max_iterations: int = 5
    max_test_design_attempts: int = 3
    token_budget: int = 400_000
    wall_time_budget_s: float = 1800.0
    context_token_budget: int = 12_000
    cost_budget_usd: float | None = None
    model_prices: dict[str, ModelPrice] = Field(default_factory=dict)
    localize: bool = True  # the programmer's model names files, then classes/functions, before its first turn
    max_read_turns: int = 6  # programmer answers that only READ code, per job

    # Store and queue
    database_url: str = "sqlite:///agentcoder.db"
    concurrent_jobs: int = 2  # 0: `serve` takes deliveries but runs no jobs (workers elsewhere do)
    worker_heartbeat_s: float = 5.0
    worker_stalled_after_s: float = 30.0  # a worker silent this long is taken for dead; its job runs again
    shutdown_grace_s: float = 30.0  # on SIGTERM, how long running jobs may finish before they are handed back

    # Sandbox
    sandbox_image: str = "agentcoder-sandbox:bookworm-2"
    sandbox_timeout_s: float = 300.0
    sandbox_setup_timeout_s: float = 900.0
    sandbox_memory: str = "1g"
    sandbox_cpus: float = 1.0
    sandbox_pids: int = 256
    sandbox_output_limit: int = 200_000
    sandbox_setup_network: str = "none"
    sandbox_setup_memory: str = "2g"
    sandbox_setup_disk: str = "1g"
    sandbox_ca_bundle: Path | None = Path("/etc/ssl/certs/ca-certificates.crt")
    sandbox_wheelhouse: Path | None = None
    sandbox_env_images_max: int = 30
    sandbox_env_images_bytes: int = 20 * 1024 ** 3

    # The Docker daemon the sandboxes run on: Docker's own variables, read here like every other setting.
    docker_host: str | None = Field(default=None, validation_alias="DOCKER_HOST")
    docker_tls_verify: str | None = Field(default=None, validation_alias="DOCKER_TLS_VERIFY")
    docker_cert_path: str | None = Field(default=None, validation_alias="DOCKER_CERT_PATH")

    @field_validator("sandbox_setup_network")
    @classmethod
    def _network_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", value) or value in {"bridge", "default"}:
            raise ValueError("must be none, host, or the name of a dedicated Docker network")
        return value

    @field_validator("cost_budget_usd")
    @classmethod
    def _positive_budget(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be more than 0 (US dollars per job); leave it unset for no dollar budget")
        return value

    @field_validator("max_iterations", "max_test_design_attempts", "sandbox_env_images_max")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    def docker_environment(self) -> dict[str, str]:
        """Docker's client variables as the Docker SDK reads them (empty: the local socket)."""
        values = {"DOCKER_HOST": self.docker_host, "DOCKER_TLS_VERIFY": self.docker_tls_verify,
                  "DOCKER_CERT_PATH": self.docker_cert_path}
        return {name: value for name, value in values.items() if value}

    @field_validator("concurrent_jobs")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be 0 (serve runs no jobs) or more")
        return value

    @field_validator("worker_heartbeat_s", "shutdown_grace_s")
    @classmethod
    def _positive_seconds(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be more than 0 seconds")
        return value

    @field_validator("worker_stalled_after_s")
    @classmethod
    def _longer_than_heartbeats(cls, value: float, info) -> float:
        heartbeat = info.data.get("worker_heartbeat_s", 5.0)
        if value < 3 * heartbeat:
            raise ValueError(f"must be at least three heartbeats (3 x AGENTCODER_WORKER_HEARTBEAT_S = {3 * heartbeat} s)")
        return value

    @property
    def programmer_model_name(self) -> str:
        """The model name the programmer agent asks for."""
        return self.programmer_model or self.model

    @property
    def test_designer_model_name(self) -> str:
        """The model name the test designer agent asks for."""
        return self.test_designer_model or self.model

    def github_private_key_text(self) -> str:
        """The App's private key in PEM form, from the text setting or the file setting."""
        if self.github_private_key:
            return self.github_private_key
        if self.github_private_key_path:
            try:
                return self.github_private_key_path.read_text()
            except OSError as exc:
                raise ConfigError(
                    f"AGENTCODER_GITHUB_PRIVATE_KEY_PATH: cannot read {self.github_private_key_path}: {exc.strerror}"
                ) from exc
        raise ConfigError("set AGENTCODER_GITHUB_PRIVATE_KEY (PEM text) or AGENTCODER_GITHUB_PRIVATE_KEY_PATH")

    def require_github_app(self) -> None:
        """Refuse to serve as a GitHub App without its credentials and webhook secret."""
        if not self.github_app_id:
            raise ConfigError("set AGENTCODER_GITHUB_APP_ID to the App's numeric id")
        if not self.webhook_secret:
            raise ConfigError("set AGENTCODER_WEBHOOK_SECRET to the App's webhook secret")
        try:
            serialization.load_pem_private_key(self.github_private_key_text().encode(), password=None)
        except (ValueError, TypeError) as exc:
            source = "AGENTCODER_GITHUB_PRIVATE_KEY" if self.github_private_key else "AGENTCODER_GITHUB_PRIVATE_KEY_PATH"
            raise ConfigError(f"{source}: not a PEM private key (download the App's key from its settings page)") from exc


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; a bad value becomes a ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except SettingsError as exc:  # a JSON setting that is not JSON
        field = "model_prices" if "model_prices" in str(exc) else None
        if field is None:
            raise ConfigError(f"a setting could not be parsed: {exc}") from exc
        raise ConfigError(f"AGENTCODER_MODEL_PRICES: not valid JSON; expected {PRICES_EXAMPLE}"
                          " (US dollars per million tokens)") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        env = {"openai_api_key": "OPENAI_API_KEY", "openai_base_url": "OPENAI_BASE_URL", "docker_host": "DOCKER_HOST",
               "docker_tls_verify": "DOCKER_TLS_VERIFY", "docker_cert_path": "DOCKER_CERT_PATH"}.get(
            field, f"AGENTCODER_{field.upper()}"
        )
        if field == "model_prices":
            where = ".".join(str(part) for part in first["loc"][1:])
            raise ConfigError(f"{env}: {where + ': ' if where else ''}{first['msg']}; expected {PRICES_EXAMPLE}"
                              " (US dollars per million tokens)") from exc
        raise ConfigError(f"{env}: {first['msg']}") from exc
