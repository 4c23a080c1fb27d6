"""Zero-configuration setup, the environment image's key and pruning: pure logic on files in a temp dir."""

from __future__ import annotations

from pathlib import Path

from bot.sandbox.environment import (
    CachedImage,
    SetupOptions,
    environment_key,
    images_to_prune,
)
from bot.sandbox.setup_plan import plan_setup
from tests.conftest import make_repo


def command(repo: Path) -> str:
    [only] = plan_setup(repo).commands()
    return only


def test_test_extras_and_dependency_groups_win_over_dev(tmp_path):
    repo = make_repo(tmp_path / "r", {"pyproject.toml": """
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"
        [project]
        name = "r"
        version = "1"
        [project.optional-dependencies]
        tests = ["freezegun"]
        dev = ["black"]
        docs = ["sphinx"]
        [dependency-groups]
        dev = ["ruff", "tox"]
        testing = ["pytest-benchmark"]
    """}, commit=False)
    assert command(repo) == "uv pip install -e '.[tests]' --group testing pytest"


def test_dev_group_when_no_test_group(tmp_path):
    repo = make_repo(tmp_path / "r", {"pyproject.toml": """
        [project]
        name = "r"
        version = "1"
        [dependency-groups]
        dev = ["pytest>=8"]
        lint = ["ruff"]
    """}, commit=False)
    assert command(repo) == "uv pip install -e . --group dev pytest"


def test_requirements_files_for_tests_before_dev(tmp_path):
    repo = make_repo(tmp_path / "r", {
        "setup.py": "from setuptools import setup\nsetup(name='r')\n",
        "requirements.txt": "six\n",
        "requirements/testing.txt": "hypothesis\n",
        "requirements/development.txt": "tox\n",
    }, commit=False)
    assert command(repo) == "uv pip install -e . -r requirements.txt -r requirements/testing.txt pytest"


def test_dev_requirements_when_that_is_all(tmp_path):
    repo = make_repo(tmp_path / "r", {"setup.py": "from setuptools import setup\nsetup()\n",
                                      "requirements-dev.txt": "freezegun\n"}, commit=False)
    assert command(repo) == "uv pip install -e . -r requirements-dev.txt pytest"


def test_setup_cfg_extras(tmp_path):
    repo = make_repo(tmp_path / "r", {"setup.py": "from setuptools import setup\nsetup()\n",
                                      "setup.cfg": "[options.extras_require]\ntesting = pytest-mock\n"}, commit=False)
    assert command(repo) == "uv pip install -e '.[testing]' pytest"


def test_tox_deps_only_when_nothing_else_declares_tests(tmp_path):
    repo = make_repo(tmp_path / "r", {
        "pyproject.toml": "[project]\nname='r'\nversion='1'\n",
        "tox.ini": "[tox]\nenvlist = py3\n[testenv]\ndeps =\n    pytest-cov\n    -rtest-reqs.txt\n    {env:X:}\n"
                   "commands = pytest {posargs}\n",
    }, commit=False)
    assert command(repo) == "uv pip install -e . -r test-reqs.txt pytest-cov pytest"


def test_poetry_and_pdm_groups(tmp_path):
    poetry = make_repo(tmp_path / "p", {"pyproject.toml": """
        [tool.poetry.group.dev.dependencies]
        python = "^3.8"
        pyyaml = "^6.0"
        pytest = "*"
        [build-system]
        requires = ["poetry-core"]
        build-backend = "poetry.core.masonry.api"
    """}, commit=False)
    assert command(poetry) == "uv pip install -e . 'pyyaml>=6.0' pytest pytest"
    pdm = make_repo(tmp_path / "d", {"pyproject.toml": """
        [project]
        name = "d"
        version = "1"
        [tool.pdm.dev-dependencies]
        doc = ["sphinx"]
        dev = ["pytest-cov", "-e file:///${PROJECT_ROOT}/sub"]
    """}, commit=False)
    assert command(pdm) == "uv pip install -e . pytest-cov pytest"


def test_a_plain_directory_gets_pytest_only(tmp_path):
    repo = make_repo(tmp_path / "r", {"tests/test_a.py": "def test_a():\n    pass\n"}, commit=False)
    assert command(repo) == "uv pip install pytest"


def test_environment_key_covers_identity_commands_network_and_dependency_files(tmp_path):
    files = {"pyproject.toml": "[project]\nname='r'\nversion='1'\n", "lib.py": "X = 1\n"}
    one = make_repo(tmp_path / "one", files)
    two = make_repo(tmp_path / "two", files)
    none = SetupOptions()
    key = environment_key(one, ["uv pip install -e ."], "sha256:base", none)
    assert key == environment_key(one, ["uv pip install -e ."], "sha256:base", none)
    assert key != environment_key(two, ["uv pip install -e ."], "sha256:base", none)  # another repository
    assert key != environment_key(one, ["uv pip install ."], "sha256:base", none)
    assert key != environment_key(one, ["uv pip install -e ."], "sha256:other", none)
    assert key != environment_key(one, ["uv pip install -e ."], "sha256:base", SetupOptions(network="host"))
    (one / "lib.py").write_text("X = 2\n")  # source is not a setup input
    assert key == environment_key(one, ["uv pip install -e ."], "sha256:base", none)
    (one / "requirements").mkdir()
    (one / "requirements" / "tests.txt").write_text("hypothesis\n")
    assert key != environment_key(one, ["uv pip install -e ."], "sha256:base", none)


def test_pruning_removes_least_recently_used_past_the_caps():
    images = [CachedImage(f"id{n}", (f"agentcoder-env:k{n}",), f"2026-01-0{n}T00:00:00Z", 100) for n in range(1, 6)]
    assert images_to_prune(images, 3, 10_000, keep=None) == ["id2", "id1"]
    assert images_to_prune(images, 3, 10_000, keep="agentcoder-env:k1") == ["id3", "id2"]
    assert images_to_prune(images, 10, 250, keep=None) == ["id3", "id2", "id1"]
    assert images_to_prune(images, 10, 10_000, keep=None) == []


def test_repository_identity_is_the_origin_path_without_host_or_credentials(tmp_path):
    import subprocess

    from bot.sandbox.environment import repository_identity

    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    assert repository_identity(repo) == str(repo.resolve())
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin",
                    "https://x-access-token:secret@github.com/octo/calc.git"], check=True)
    assert repository_identity(repo) == "octo/calc"
