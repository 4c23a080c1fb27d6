"""Pytest plugin that runs *inside* the sandbox and streams one JSON line per test result.

Loaded with ``-p agentcoder_pytest_report`` before any conftest or test module is imported. The
report goes to the container's stdout, which the bot reads as it is written: the launching shell
hands it over as the descriptor named by ``AGENTCODER_REPORT_FD``; at import this plugin moves it to
a private, non-inheritable descriptor and removes the variable, so code under test finds no report
path or variable, and what was streamed cannot be rewritten afterwards (the bot keeps each test's
worst outcome and cross-checks the report with pytest's exit status). Standard library only.
A ``start`` record is written before each test so that a run killed at the timeout still tells
which test was running.
"""

import json
import os

_MESSAGE_LIMIT = 4000


def _take_channel():
    number = os.environ.pop("AGENTCODER_REPORT_FD", None)
    if number is None:
        return None
    try:
        private = os.dup(int(number))
        os.close(int(number))
    except (OSError, ValueError):
        return None
    return private


_channel = _take_channel()


def _write(record):
    if _channel is None:
        return
    data = (json.dumps(record) + "\n").encode("utf-8", errors="replace")
    while data:
        data = data[os.write(_channel, data):]


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


def pytest_collection_finish(session):
    if session.config.pluginmanager.hasplugin("dsession"):
        _write({"kind": "collected", "distributed": True})  # pytest-xdist: the workers collect
        return
    _write({"kind": "collected", "ids": [item.nodeid for item in session.items]})


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
