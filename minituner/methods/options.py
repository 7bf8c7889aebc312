"""A config field's domain, written once beside the field: the config checks it, the command line
builds its option from it, and the property tests draw values inside and outside it.

    r: int = option(8, "LoRA rank r", ge=1, le=4096, short="r")

metadata: help (the option's text), the bounds gt / ge / lt / le, choices, short (the setting's
name in tables, e.g. "k"), cli (False: not a command-line option), regex (a string that is not a
plain comma list of names stays a string: PEFT's regular expression). The type is the field's
annotation: bool takes True or False only (never "no" or 1), int an int (never a bool or 2.0),
float any finite real, str a string; "| None" allows None, "bool | str" True, False or one of the
choices, "tuple | str" a list of names or one comma-separated string.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import re
import typing

NAMES = re.compile(r"\s*[\w.]+\s*(,\s*[\w.]+\s*)*")  # "q_proj, v_proj": a comma list of plain names


class ConfigError(ValueError):
    """A config field outside its domain; ``field`` names it (the command line maps it to its option)."""

    def __init__(self, config: str, field: str, message: str):
        super().__init__(f"{config}.{field} {message}")
        self.config, self.field = config, field


def option(default, help: str, *, gt=None, ge=None, lt=None, le=None, choices=None, short=None, cli=True,
           regex=False):
    """A dataclass field whose metadata states its domain (see the module docstring)."""
    meta = dict(help=help, gt=gt, ge=ge, lt=lt, le=le, choices=choices, short=short, cli=cli, regex=regex)
    if isinstance(default, (list, dict, set)):
        raise TypeError("a mutable default must be a tuple")
    return dataclasses.field(default=default, metadata=meta)


def kinds(annotation: str) -> set[str]:
    """'int | None' -> {'int', 'None'}: the types a field's annotation allows, by name."""
    return {part.strip() for part in str(annotation).split("|")}


def domain(f: dataclasses.Field, annotation: str) -> str:
    """The field's domain in words, e.g. 'an integer >= 1 and <= 4096'."""
    m, allowed = f.metadata, kinds(annotation)
    if m.get("choices"):
        words = "one of " + ", ".join(repr(c) for c in m["choices"])
    elif "bool" in allowed:
        words = "True or False"
    elif "int" in allowed:
        words = "an integer"
    elif "float" in allowed:
        words = "a finite number"
    elif "tuple" in allowed:
        words = "a list of names (or one comma-separated string" + (", or a regular expression)" if m.get("regex") else ")")
    else:
        words = "a string"
    bounds = [f"{op} {m[key]:g}" for key, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
              if m.get(key) is not None]
    words += (" " + " and ".join(bounds)) if bounds else ""
    return words + (", or None" if "None" in allowed else "")


def check_field(config, f: dataclasses.Field, annotation: str):
    """The field's value, checked against its domain (a tuple for list fields); a ConfigError if outside."""
    name, value, m, allowed = type(config).__name__, getattr(config, f.name), f.metadata, kinds(annotation)

    def bad():
        return ConfigError(name, f.name, f"must be {domain(f, annotation)}, got {value!r}")

    if value is None:
        if "None" not in allowed:
            raise bad()
        return None
    if "bool" in allowed:
        if isinstance(value, bool):
            return value
        if not allowed & {"str", "int", "float", "tuple"}:
            raise bad()
    if "tuple" in allowed:
        if isinstance(value, str) and m.get("regex") and not NAMES.fullmatch(value):
            try:
                re.compile(value)
            except re.error as e:
                raise ConfigError(name, f.name, f"is neither a list of names nor a valid regular expression "
                                  f"({e}): {value!r}") from None
            return value
        if isinstance(value, str):
            value = tuple(s.strip() for s in value.split(",") if s.strip())
        elif isinstance(value, (list, tuple)) and all(isinstance(s, str) for s in value):
            value = tuple(s.strip() for s in value)
        else:
            raise bad()
        if not all(value):
            raise bad()
        return value
    if "int" in allowed and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise bad()
    if "float" in allowed and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                               or not math.isfinite(value)):
        raise bad()
    if "str" in allowed and not ({"int", "float"} & allowed) and not isinstance(value, str):
        raise bad()
    if m.get("choices") and value not in m["choices"]:
        raise bad()
    for key, ok in (("gt", lambda v, b: v > b), ("ge", lambda v, b: v >= b), ("lt", lambda v, b: v < b),
                    ("le", lambda v, b: v <= b)):
        if m.get(key) is not None and not ok(value, m[key]):
            raise bad()
    return value


def check_options(config) -> None:
    """Every field of a config dataclass checked against its option() domain (list fields become tuples)."""
    for f in dataclasses.fields(config):
        if "help" in f.metadata:
            object.__setattr__(config, f.name, check_field(config, f, annotation_of(type(config), f.name)))


@functools.cache
def annotation_of(cls, name: str) -> str:
    """A field's annotation as 'int | None', resolved (for the command line and the tests); once per class and
    field (typing.get_type_hints evaluates every annotation of the class at each call)."""
    hint = typing.get_type_hints(cls)[name]
    parts = typing.get_args(hint) or (hint,)
    return " | ".join("None" if t is type(None) else t.__name__ for t in parts)
