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


def add_field(parser: argparse.ArgumentParser, f: dataclasses.Field, hint: Any) -> None:
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
        parser.add_argument(flag, type=_pair, action="append", metavar="KEY=VALUE", **kwargs)
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


def build_parser(cls: type, prog: str, description: str = "") -> argparse.ArgumentParser:
    """An ``argparse`` parser with one option per field of the dataclass ``cls``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        add_field(parser, f, hints[f.name])
    return parser


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
        parser.exit(2, f"{parser.prog}: error: {e}\n")
