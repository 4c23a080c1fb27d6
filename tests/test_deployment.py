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
