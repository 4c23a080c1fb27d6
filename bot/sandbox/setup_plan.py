"""Zero-configuration setup: install a repository and its test dependencies as its maintainers declare them.

Read from the repository's files, never run: PEP 621 extras, PEP 735 dependency groups, Poetry and PDM
development groups, requirements files for tests and development, and tox's test dependencies where
that is the only declaration. Test-named declarations win over `dev` ones (which often pull in linters,
docs and release tools). Everything goes to one `uv pip install`, so one resolver sees it all.
"""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

TEST_NAMES = ("test", "tests", "testing")
DEV_NAMES = ("dev",)
REQUIREMENT_FILES = (
    *(f"requirements-{name}.txt" for name in (*TEST_NAMES, "dev")),
    *(f"requirements_{name}.txt" for name in (*TEST_NAMES, "dev")),
    *(f"{name}-requirements.txt" for name in (*TEST_NAMES, "dev")),
    *(f"requirements/{name}.txt" for name in (*TEST_NAMES, "dev", "development")),
    "tests/requirements.txt",
)
# Files whose content decides what the setup installs: every one is part of an environment image's key.
DEPENDENCY_GLOBS = (
    "pyproject.toml", "setup.py", "setup.cfg", "tox.ini", "noxfile.py", "Pipfile", "Pipfile.lock",
    "poetry.lock", "pdm.lock", "uv.lock", "MANIFEST.in", ".agentcoder.yml",
    "requirements*.txt", "*requirements*.txt", "requirements/*.txt", "requirements/*.in", "tests/requirements*.txt",
)


@dataclass
class SetupPlan:
    """What the default setup installs, and why (for the setup log)."""

    editable: bool = False
    extras: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    requirement_files: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def commands(self) -> list[str]:
        """Shell commands of the setup (one installer call)."""
        args = []
        if self.editable:
            target = "." + (f"[{','.join(self.extras)}]" if self.extras else "")
            args += ["-e", target]
        for group in self.groups:
            args += ["--group", group]
        for name in self.requirement_files:
            args += ["-r", name]
        args += [*self.requirements, "pytest"]
        return ["uv pip install " + " ".join(shlex.quote(arg) for arg in args)]


def dependency_files(repo: Path) -> list[str]:
    """Repository-relative names of every file the setup's outcome depends on, sorted."""
    found = {path for pattern in DEPENDENCY_GLOBS for path in repo.glob(pattern) if path.is_file()}
    return sorted(path.relative_to(repo).as_posix() for path in found)


def plan_setup(repo: Path) -> SetupPlan:
    """The default setup for a repository with no `setup:` in `.agentcoder.yml`."""
    plan = SetupPlan()
    pyproject = _toml(repo / "pyproject.toml")
    if pyproject or (repo / "setup.py").is_file():
        plan.editable = bool((repo / "setup.py").is_file() or "build-system" in pyproject or "project" in pyproject)
    if (repo / "requirements.txt").is_file():
        plan.requirement_files.append("requirements.txt")
        plan.sources.append("requirements.txt")

    extras = list(pyproject.get("project", {}).get("optional-dependencies", {})) + _setup_cfg_extras(repo) + \
        _setup_py_extras(repo)
    plan.extras = _pick(extras)
    if plan.extras:
        plan.sources.append(f"extras {', '.join(plan.extras)}")
    plan.groups = _pick(list(pyproject.get("dependency-groups", {})))
    if plan.groups:
        plan.sources.append(f"dependency groups {', '.join(plan.groups)}")
    tool = pyproject.get("tool", {})
    poetry = tool.get("poetry", {})
    poetry_groups = {name: group.get("dependencies", {}) for name, group in poetry.get("group", {}).items()}
    if "dev-dependencies" in poetry:
        poetry_groups.setdefault("dev", poetry["dev-dependencies"])
    for name in _pick(list(poetry_groups)):
        plan.requirements += [_poetry_requirement(dep, spec) for dep, spec in poetry_groups[name].items()
                              if dep != "python"]
        plan.sources.append(f"poetry group {name}")
    pdm = tool.get("pdm", {}).get("dev-dependencies", {})
    for name in _pick(list(pdm)):
        plan.requirements += [req for req in pdm[name] if isinstance(req, str) and not req.startswith("-")]
        plan.sources.append(f"pdm group {name}")
    files = [name for name in REQUIREMENT_FILES if (repo / name).is_file()]
    tests_first = [name for name in files if not re.search(r"dev", name)] or files
    plan.requirement_files += tests_first
    plan.sources += tests_first
    if not (plan.extras or plan.groups or plan.requirements or tests_first):
        deps, tox_extras = _tox_test_deps(repo)
        plan.requirements += [dep for dep in deps if not dep.startswith("-r")]
        plan.requirement_files += [dep[2:].strip() for dep in deps if dep.startswith("-r")]
        plan.extras = [extra for extra in tox_extras if extra in extras]
        if deps or plan.extras:
            plan.sources.append("tox.ini [testenv]")
    plan.requirement_files = list(dict.fromkeys(plan.requirement_files))
    return plan


def _pick(names: list[str]) -> list[str]:
    tests = [name for name in names if name.lower() in TEST_NAMES]
    return tests or [name for name in names if name.lower() in DEV_NAMES]


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def _ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except (OSError, configparser.Error, UnicodeDecodeError):
        pass
    return parser


def _setup_cfg_extras(repo: Path) -> list[str]:
    parser = _ini(repo / "setup.cfg")
    return list(parser["options.extras_require"]) if parser.has_section("options.extras_require") else []


def _setup_py_extras(repo: Path) -> list[str]:
    try:
        text = (repo / "setup.py").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    match = re.search(r"extras_require\s*=\s*\{(.*?)\}", text, re.S)
    return re.findall(r"""["']([\w.-]+)["']\s*:""", match.group(1)) if match else []


def _tox_test_deps(repo: Path) -> tuple[list[str], list[str]]:
    parser = _ini(repo / "tox.ini")
    if not parser.has_section("testenv"):
        return [], []
    section = parser["testenv"]
    lines = [line.strip() for line in section.get("deps", "").splitlines()]
    deps = [line for line in lines if line and not line.startswith("#") and "{" not in line]
    extras = [line.strip() for line in re.split(r"[,\n]", section.get("extras", "")) if line.strip()]
    return deps, extras


def _poetry_requirement(name: str, spec: object) -> str:
    version = spec.get("version", "*") if isinstance(spec, dict) else spec
    if not isinstance(version, str) or version.strip() in {"", "*"}:
        return name
    version = version.strip()
    if version.startswith("^"):
        return f"{name}>={version[1:]}"
    if version.startswith("~") and not version.startswith("~="):
        return f"{name}>={version[1:]}"
    if version[0].isdigit():
        return f"{name}=={version}"
    return f"{name}{version}"
