"""Pytest plugin that runs *inside* the sandbox and writes one JSON line per test result.

Loaded with ``-p agentcoder_pytest_report``; writes to the file named by
``AGENTCODER_REPORT``. Standard library only: it must work in any repository's environment.
A ``start`` record is written before each test so that a run killed at the timeout still
tells which test was running.
"""

import json
import os

_MESSAGE_LIMIT = 4000
_report = None


def _write(record):
    global _report
    if _report is None:
        path = os.environ.get("AGENTCODER_REPORT")
        if not path:
            return
        _report = open(path, "a", encoding="utf-8", errors="replace")
    _report.write(json.dumps(record) + "\n")
    _report.flush()


def _trim(text):
    text = text or ""
    if len(text) <= _MESSAGE_LIMIT:
        return text
    half = _MESSAGE_LIMIT // 2
    return text[:half] + "\n...[trimmed]...\n" + text[-half:]


def _longrepr(report):
    if report.longrepr is None:
        return ""
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2])
    return str(report.longreprtext if hasattr(report, "longreprtext") else report.longrepr)


def pytest_collectreport(report):
    if report.failed:
        _write({"kind": "collect_error", "id": report.nodeid or "<session>", "message": _trim(_longrepr(report))})


def pytest_runtest_logstart(nodeid, location):
    _write({"kind": "start", "id": nodeid})


def pytest_runtest_logfinish(nodeid, location):
    _write({"kind": "end", "id": nodeid})


def pytest_runtest_logreport(report):
    if report.when == "call":
        if report.passed:
            outcome = "passed"
        elif report.skipped:
            outcome = "skipped"
        else:
            outcome = "failed"
    elif report.failed:
        outcome = "error"
    elif report.skipped:
        outcome = "skipped"
    else:
        return
    _write(
        {
            "kind": "test",
            "id": report.nodeid,
            "when": report.when,
            "outcome": outcome,
            "message": _trim(_longrepr(report)),
            "duration_s": round(getattr(report, "duration", 0.0), 4),
        }
    )


def pytest_sessionfinish(session, exitstatus):
    _write({"kind": "finish", "exitstatus": int(exitstatus)})
