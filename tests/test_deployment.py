"""The deployment files say what the README promises (the container proof itself runs in .ci/run)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_app_manifest_asks_for_what_the_bot_uses():
    manifest = yaml.safe_load((ROOT / "app.yml").read_text())
    assert manifest["default_events"] == ["issues", "issue_comment", "pull_request_review", "pull_request_review_comment"]
    assert manifest["default_permissions"] == {"contents": "write", "issues": "write", "pull_requests": "write",
                                               "metadata": "read"}
    assert manifest["hook_attributes"]["url"].endswith("/webhooks")
    assert manifest["name"] and manifest["url"].startswith("https://")


def test_dockerfile_takes_its_base_image_as_a_build_argument():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile
    assert 'ENTRYPOINT ["agentcoder"]' in dockerfile


def test_ci_proves_the_readme_container_deployment():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("scripts/build-bot-image agentcoder:ci") < ci.index("scripts/check-deployment agentcoder:ci")
    proof = (ROOT / "scripts" / "check-deployment").read_text()
    readme = (ROOT / "README.md").read_text()
    # The proof mounts the socket exactly as the README tells maintainers to, and nothing else of the host.
    assert "-v /var/run/docker.sock:/var/run/docker.sock" in readme
    assert proof.count(" -v ") == 1 and '-v "$socket:/var/run/docker.sock"' in proof
    assert "agentcoder check /inside/repo --json" in proof and "agentcoder playground --json" in proof


def test_scripts_and_settings_name_the_same_sandbox_image():
    from bot.config import Settings

    image = Settings.model_fields["sandbox_image"].default
    for script in ("build-sandbox-image", "build-bot-image", "check-deployment"):
        assert image in (ROOT / "scripts" / script).read_text(), script


def test_compose_file_runs_a_jobless_bot_workers_postgresql_and_a_sandbox_daemon():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "bot", "worker", "sandboxes"} <= set(services)
    bot, worker, migrate = services["bot"], services["worker"], services["migrate"]
    assert bot["command"][0] == "serve" and worker["command"] == ["worker"] and migrate["command"] == ["migrate"]
    assert bot["environment"]["AGENTCODER_CONCURRENT_JOBS"] == "0" and bot["volumes"] == []
    for service in (bot, worker, migrate):
        environment = service["environment"]
        assert environment["AGENTCODER_DATABASE_URL"].startswith("postgresql://agentcoder:${POSTGRES_PASSWORD")
        assert "@postgres:5432/" in environment["AGENTCODER_DATABASE_URL"]
        assert environment["AGENTCODER_GITHUB_PRIVATE_KEY_PATH"] == "/run/secrets/github_app_key"
    # Workers reach a Docker daemon: the host's socket by default, the Docker-in-Docker sidecar on request.
    assert "/var/run/docker.sock:/var/run/docker.sock" in worker["volumes"]
    assert worker["environment"]["DOCKER_HOST"].startswith("${AGENTCODER_DOCKER_HOST:-unix:///var/run/docker.sock")
    assert services["sandboxes"]["profiles"] == ["dind"] and services["sandboxes"]["privileged"] is True
    # Docker waits longer than the workers' own grace period before it kills them.
    assert int(worker["stop_grace_period"].rstrip("s")) > int(worker["environment"]["AGENTCODER_SHUTDOWN_GRACE_S"])
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
