"""Prompt templates (`prompts/*.md`), rendered strictly: a missing variable is an error, not an empty string."""

from __future__ import annotations

from pathlib import Path

import jinja2

import prompts
from bot.loop import untrusted

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(prompts.__file__).parent),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)

# Every untrusted value passes one of these at the prompt boundary (see bot/loop/untrusted.py).
_TEMPLATES.filters.update(
    one_line=untrusted.one_line,
    untrusted=lambda text, source: untrusted.block(source, text),
    code=lambda text, info="python": untrusted.fence(untrusted.reveal(text), info),
    reveal=untrusted.reveal,
)


def render(name: str, **variables: object) -> str:
    """Render `prompts/<name>.md` with exactly these variables."""
    return _TEMPLATES.get_template(f"{name}.md").render(**variables).strip() + "\n"
