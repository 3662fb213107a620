"""A command line generated from a frozen dataclass: one ``--option`` per field, nothing else.

The option's type, choices and help come from the field (its annotation and ``metadata``), and
the help shows the field's default. Only the options typed on the command line reach the
dataclass, so its own defaults (and its validation) are the only ones.

Example:
    >>> parser = build_parser(TrainConfig, prog="tokengym-train")
    >>> parse_config(TrainConfig, parser, ["--agent", "supervised", "--lr", "0.01"]).lr
    0.01
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from tokengym.errors import TokenGymError

from .config import AGENT_DEFAULTS

T = TypeVar("T")
NONE_WORDS = ("none", "None")


def _value(text: str) -> Any:
    """A ``KEY=VALUE`` value: JSON when it parses (numbers, bools, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pair(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, _value(value)


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_or_none(text: str) -> Any:
        return None if text in NONE_WORDS else parse(text)

    parse_or_none.__name__ = getattr(parse, "__name__", "value")  # argparse's error wording
    return parse_or_none


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, else ``(hint, False)``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _default_text(f: dataclasses.Field) -> str:
    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    if f.default is None and any(f.name in d for d in AGENT_DEFAULTS.values()):
        per_agent = {agent: d[f.name] for agent, d in AGENT_DEFAULTS.items() if f.name in d}
        groups: dict[Any, list[str]] = {}
        for agent, value in per_agent.items():
            groups.setdefault(value, []).append(agent)
        return "per agent: " + "; ".join(f"{'/'.join(a)} {v}" for v, a in groups.items())
    return repr(f.default)


def add_field(parser: Any, f: dataclasses.Field, hint: Any) -> None:
    """Add the option of one dataclass field."""
    flag = "--" + f.name.replace("_", "-")
    help_text = f"{f.metadata.get('help', '')} (default: {_default_text(f)})"
    kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
    inner, optional = _unwrap_optional(hint)
    choices = f.metadata.get("choices")
    if inner is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        return
    if typing.get_origin(inner) in (Mapping, dict):
        kwargs["help"] = help_text.replace(
            " (default:",
            "; several KEY=VALUE after one flag, and the flag repeated, add up (default:",
            1,
        )
        parser.add_argument(
            flag, type=_pair, nargs="+", action="extend", metavar="KEY=VALUE", **kwargs
        )
        return
    if typing.get_origin(inner) is tuple:
        (item, _) = typing.get_args(inner)
        parser.add_argument(flag, type=item, nargs="+", **kwargs)
        return
    parse = _optional(inner) if optional else inner
    if choices is not None:
        kwargs["choices"] = [c if c is not None else "none" for c in choices]
        kwargs["metavar"] = (
            "{" + ",".join(str(c).lower() if c is None else c for c in choices) + "}"
        )
        parse = str
    parser.add_argument(flag, type=parse, **kwargs)


def build_parser(
    cls: type, prog: str, description: str = "", sections: Mapping[str, str] | None = None
) -> argparse.ArgumentParser:
    """An ``argparse`` parser with one option per field of the dataclass ``cls``.

    ``sections`` maps a field name to the title of the group of options it opens (fields
    follow the class order; a field's ``metadata["section"]`` names its group instead).
    """
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    hints = typing.get_type_hints(cls)
    groups: dict[str, Any] = {}

    def group(title: str) -> Any:
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        return groups[title]

    current: Any = parser
    for f in dataclasses.fields(cls):
        if sections and f.name in sections:
            current = group(sections[f.name])
        target = group(f.metadata["section"]) if "section" in f.metadata else current
        add_field(target, f, hints[f.name])
    return parser


def flag_words(message: str, cls: type) -> str:
    """``message`` with the field names of ``cls`` as the options a user typed.

    Example:
        >>> flag_words("gamma=1.5 is invalid; set it with TrainConfig.gamma", TrainConfig)
        '--gamma=1.5 is invalid; set it with --gamma'
    """
    names = "|".join(sorted((f.name for f in dataclasses.fields(cls)), key=len, reverse=True))
    message = re.sub(rf"\b{cls.__name__}\.({names})\b", lambda m: _flag(m.group(1)), message)
    message = re.sub(rf"(?<![\w.\-\['])({names})(?==)", lambda m: _flag(m.group(1)), message)
    mapping = r"\b(env_kwargs|sb3_kwargs)\['([^']*)'\](=\S+)?"
    return re.sub(
        mapping, lambda m: f"{_flag(m.group(1))} {m.group(2)}{m.group(3) or '=...'}", message
    )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_config(cls: type[T], parser: argparse.ArgumentParser, argv: list[str] | None) -> T:
    """Parse ``argv`` into ``cls``; a value the dataclass rejects exits 2 with its message."""
    given = vars(parser.parse_args(argv))
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in given:
            continue
        value = given[f.name]
        if isinstance(value, list) and value and isinstance(value[0], tuple):
            given[f.name] = dict(value)  # KEY=VALUE pairs
        elif isinstance(value, list):
            given[f.name] = tuple(value)
        elif value == "none" and f.metadata.get("choices") and None in f.metadata["choices"]:
            given[f.name] = None
    try:
        return cls(**given)
    except TokenGymError as e:  # one line: the usage block would bury the message
        parser.exit(2, f"{parser.prog}: error: {flag_words(str(e), cls)}\n")
