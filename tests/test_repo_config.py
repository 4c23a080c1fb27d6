"""Parsing `.agentcoder.yml`: defaults, every setting, and clear refusals."""

import pytest

from bot.repo_config import (
    DEFAULT_TEST_COMMAND,
    RepoConfig,
    RepoConfigError,
    load_repo_config,
    parse_repo_config,
)


def test_missing_and_empty_file_mean_defaults(tmp_path):
    assert load_repo_config(tmp_path) == RepoConfig()
    assert parse_repo_config("") == RepoConfig()
    assert RepoConfig().test_command == DEFAULT_TEST_COMMAND


def test_every_setting_is_read():
    config = parse_repo_config(
        "setup: pip install -e .\ntest_command: python -m pytest -q tests\ntimeout: 90\n"
        "instructions: Keep it small.\nprotected_paths: [docs/*, setup.py]\n"
    )
    assert config.setup == ("pip install -e .",)
    assert config.test_command == "python -m pytest -q tests"
    assert config.timeout_s == 90.0
    assert config.instructions == "Keep it small."
    assert config.is_protected("docs/index.md") and config.is_protected("setup.py")
    assert not config.is_protected("src/app.py")


@pytest.mark.parametrize(
    "text, message",
    [
        ("setup: [1, 2]", "'setup' must be a string or a list of strings"),
        ("timeout: soon", "'timeout' must be a positive number"),
        ("timeout: true", "'timeout' must be a positive number"),
        ("test_command: ''", "'test_command' must be a non-empty string"),
        ("colour: blue", "unknown setting(s) 'colour'"),
        ("- just\n- a list", "must be a mapping"),
        ("setup: [unclosed", "is not valid YAML (line "),
        ("instructions: [a]", "'instructions' must be a string"),
    ],
)
def test_bad_files_are_refused_with_the_reason(text, message):
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config(text)
    assert message in str(info.value)


def test_a_yaml_error_names_the_line_without_quoting_the_file():
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config("setup: [unclosed secret-looking-value")
    assert "secret-looking-value" not in str(info.value)


def test_a_symlinked_config_is_refused(tmp_path):
    (tmp_path / "elsewhere.yml").write_text("setup: [echo hi]\n")
    (tmp_path / ".agentcoder.yml").symlink_to(tmp_path / "elsewhere.yml")
    with pytest.raises(RepoConfigError, match="not a symbolic link"):
        load_repo_config(tmp_path)
