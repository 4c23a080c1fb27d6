"""SWE-bench's formats: task instances in, predictions out, and the per-instance records of `agentcoder bench swe`.

Instances are JSON lines with `instance_id`, `repo` (`owner/name`), `base_commit`, `problem_statement`, and
optionally `patch` (the gold fix), `test_patch`, `FAIL_TO_PASS` and `PASS_TO_PASS` (JSON lists of test ids, as
text in the published datasets or as lists). Predictions are what the official harness reads:
`instance_id`, `model_name_or_path`, `model_patch`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

# The keys SWE-bench's harness reads from each prediction (swebench/harness/constants: KEY_INSTANCE_ID,
# KEY_MODEL, KEY_PREDICTION).
PREDICTION_KEYS = ("instance_id", "model_name_or_path", "model_patch")
REQUIRED_KEYS = ("instance_id", "repo", "base_commit", "problem_statement")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")


class InstancesError(Exception):
    """The instances file cannot be read at all; the message names it."""


class Status(str, Enum):
    """What became of one instance (the `"status"` of the JSON report)."""

    COMPLETED = "completed"  # the loop ran and a prediction was written
    SKIPPED = "skipped"  # never started: no mirror, missing base commit, not a Python repository
    ERROR = "error"  # the loop ran but scoring could not (a test patch that does not apply)
    SETUP_FAILED = "setup_failed"  # the repository's environment could not be installed


@dataclass(frozen=True)
class Instance:
    """One SWE-bench task instance."""

    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str
    patch: str = ""
    test_patch: str = ""
    fail_to_pass: tuple[str, ...] = ()
    pass_to_pass: tuple[str, ...] = ()

    @property
    def mirror_name(self) -> str:
        """`owner__name`, the directory of this repository under `--repos`."""
        return self.repo.replace("/", "__")

    @property
    def scorable(self) -> bool:
        """True when the instance carries what SWE-bench's resolution rule needs."""
        return bool(self.test_patch and self.fail_to_pass)


@dataclass
class Loaded:
    """The instances of a file, and the lines that were not instances."""

    instances: list[Instance] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # one line each: "line 7: <why>"


def _test_ids(value: object, key: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"{key} is not a JSON list") from exc
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key} must be a list of test ids")
    return tuple(value)


def parse_instance(data: object) -> Instance:
    """One instance from its JSON object; ValueError says what is wrong with it."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004 - one error type for every malformed line
    missing = [key for key in REQUIRED_KEYS if not isinstance(data.get(key), str) or not data[key].strip()]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if not _REPO.match(data["repo"]):
        raise ValueError(f"repo {data['repo'][:80]!r} is not owner/name")
    if not re.fullmatch(r"[0-9a-fA-F]{7,40}", data["base_commit"]):
        raise ValueError("base_commit is not a commit sha")
    for key in ("patch", "test_patch"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f"{key} must be text")
    return Instance(
        data["instance_id"], data["repo"], data["base_commit"], data["problem_statement"],
        data.get("patch") or "", data.get("test_patch") or "",
        _test_ids(data.get("FAIL_TO_PASS"), "FAIL_TO_PASS"), _test_ids(data.get("PASS_TO_PASS"), "PASS_TO_PASS"),
    )


def parse_instances(lines: Iterable[str]) -> Loaded:
    """Instances from JSON lines; a malformed line is skipped and recorded, a repeated id keeps the first."""
    loaded, seen = Loaded(), set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            instance = parse_instance(json.loads(line))
        except ValueError as exc:
            loaded.malformed.append(f"line {number}: {str(exc).splitlines()[0][:200]}")
            continue
        if instance.instance_id in seen:
            loaded.malformed.append(f"line {number}: instance {instance.instance_id} repeated")
            continue
        seen.add(instance.instance_id)
        loaded.instances.append(instance)
    return loaded


def load_instances(path: Path) -> Loaded:
    """The instances of a JSONL file (a JSON list, as SWE-bench's own exports, works too)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InstancesError(f"cannot read --instances {path}: {exc.strerror}") from exc
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise InstancesError(f"--instances {path}: not JSON lines and not a JSON list") from exc
        text = "\n".join(json.dumps(row) for row in rows)
    return parse_instances(text.splitlines())


# -- predictions ---------------------------------------------------------------------------------------


def prediction(instance_id: str, model: str, model_patch: str) -> dict:
    """One prediction exactly as SWE-bench's harness reads it."""
    return {"instance_id": instance_id, "model_name_or_path": model, "model_patch": model_patch}


def predicted_ids(path: Path | None) -> set[str]:
    """Instance ids that already have a prediction in `path` (for resuming); none when it does not exist."""
    if path is None or not path.is_file():
        return set()
    ids = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue  # a line cut by an interruption: that instance runs again
        if isinstance(data, dict) and isinstance(data.get("instance_id"), str):
            ids.add(data["instance_id"])
    return ids


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line and flush it, so an interruption loses at most the running instance."""
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def results_path(predictions: Path) -> Path:
    """Where the per-instance records live beside a predictions file (`preds.jsonl` → `preds.results.jsonl`)."""
    return predictions.with_name(predictions.stem + ".results.jsonl")


def earlier_results(path: Path, ids: set[str]) -> dict[str, dict]:
    """Records of an earlier run for these instance ids, the last one per id."""
    found: dict[str, dict] = {}
    if not path.is_file():
        return found
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("instance_id") in ids:
            found[data["instance_id"]] = data
    return found


# -- patches -------------------------------------------------------------------------------------------


def patch_files(patch: str) -> list[str]:
    """The paths a unified diff changes (its `+++ b/...` side, or the old path of a deletion)."""
    paths = []
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            match = re.match(r"diff --git a/(.+?) b/(.+)$", line)
            if match:
                paths.append(match.group(2))
    return paths


def patch_to_edit_blocks(patch: str) -> str:
    """A unified diff as the programmer's SEARCH/REPLACE blocks: one block per hunk, an empty SEARCH for new files."""
    blocks: list[str] = []
    path = None
    old: list[str] = []
    new: list[str] = []
    in_hunk = False

    def flush() -> None:
        if in_hunk and path is not None:
            blocks.append(f"{path}\n<<<<<<< SEARCH\n{''.join(old)}=======\n{''.join(new)}>>>>>>> REPLACE\n")

    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git "):
            flush()
            in_hunk, path = False, None
        elif line.startswith("+++ "):
            target = line[4:].strip()
            path = target[2:] if target.startswith("b/") else None
        elif _HUNK.match(line):
            flush()
            in_hunk, old, new = True, [], []
        elif in_hunk and line.startswith("\\"):
            continue  # "\ No newline at end of file"
        elif in_hunk and line[:1] in {" ", "-", "+"} or in_hunk and line in {"\n", "\r\n"}:
            text = line[1:] if line[:1] in {" ", "-", "+"} else line
            if not text.endswith("\n"):
                text += "\n"
            if line[:1] != "+":
                old.append(text)
            if line[:1] != "-":
                new.append(text)
    flush()
    return "\n".join(blocks)


# -- records -------------------------------------------------------------------------------------------


@dataclass
class Designed:
    """SWT-bench-style verdicts on the generated tests: base commit versus base plus the gold patch."""

    fail_to_pass: int = 0  # fail on the base commit, pass with the gold patch: real reproductions
    regression: int = 0  # pass on both
    wrong: int = 0  # fail with the gold patch


@dataclass
class InstanceResult:
    """Everything `agentcoder bench swe` reports about one instance."""

    instance_id: str
    status: Status
    reason: str = ""  # one line for skipped / error / setup_failed
    resolved: bool | None = None  # SWE-bench's rule in our sandbox; None when the instance cannot be scored
    stop: str | None = None  # the loop's Stop value
    iterations: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: dict[str, float | None] = field(default_factory=dict)
    wall_s: float = 0.0  # the whole instance: clone, loop, scoring
    loop_s: float = 0.0  # the loop alone
    sandbox_s: float = 0.0  # every sandboxed test run: the loop's and the scoring's
    files_changed: list[str] = field(default_factory=list)
    fail_to_pass: dict[str, str] = field(default_factory=dict)  # FAIL_TO_PASS test id → outcome after the change
    pass_to_pass_failed: list[str] = field(default_factory=list)
    designed: Designed | None = None
    resumed: bool = False

    def to_json(self) -> dict:
        """The instance's JSON record."""
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_json(cls, data: dict) -> InstanceResult:
        """A record written by `to_json` (an earlier, resumed run)."""
        data = dict(data)
        designed = data.pop("designed", None)
        result = cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})
        result.status = Status(result.status)
        result.designed = Designed(**designed) if isinstance(designed, dict) else None
        return result
