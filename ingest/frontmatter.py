"""YAML front matter at the top of a Markdown essay: split it off and read it as string metadata."""

from __future__ import annotations

import datetime as dt
import logging
import re

import yaml

log = logging.getLogger(__name__)
# libyaml's safe loader, when PyYAML was built with it, is many times faster than the pure-Python one.
_LOADER = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader

_BLOCK = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
# A leading "---" is also a Markdown rule; only a block that opens with "key:" is front matter.
_FIRST_KEY = re.compile(r"\s*[\w-]+\s*:")


def split_front_matter(text: str, *, name: str = "") -> tuple[dict[str, str], str]:
    """Front-matter keys as strings, and the text after the block; ({}, text) when there is none."""
    match = _BLOCK.match(text)
    if not match or not _FIRST_KEY.match(match.group(1)):
        return {}, text
    body = text[match.end() :]
    try:
        data = yaml.load(match.group(1), Loader=_LOADER)
    except yaml.YAMLError as err:
        log.warning("%s: front matter is not valid YAML, so its metadata is ignored (%s)", name, err)
        return {}, body
    if not isinstance(data, dict):
        return {}, body
    return {str(key): as_text(value) for key, value in data.items() if value is not None}, body


def as_text(value: object) -> str:
    """A YAML value as one string: lists joined with commas, dates in ISO form."""
    if isinstance(value, (list, tuple)):
        return ", ".join(as_text(item) for item in value if item is not None)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()
