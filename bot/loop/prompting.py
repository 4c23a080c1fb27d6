"""Prompt templates (`prompts/*.md`), rendered strictly: a missing variable is an error, not an empty string."""

from __future__ import annotations

from pathlib import Path

import jinja2

import prompts

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(prompts.__file__).parent),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


def render(name: str, **variables: object) -> str:
    """Render `prompts/<name>.md` with exactly these variables."""
    return _TEMPLATES.get_template(f"{name}.md").render(**variables).strip() + "\n"
