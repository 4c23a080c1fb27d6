import pytest

"""The deployment files say what the README promises."""

from pathlib import Path

import yaml

pytestmark = pytest.mark.docker  # the real Docker engine and the sandbox image

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
