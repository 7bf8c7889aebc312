"""`minituner finetune`'s method options, generated from the registry: one option per config field
(its help and domain from the field's option() metadata), so the command line repeats no check
the config makes. An option that belongs to another method than --method is refused.

Defaults: the config's, then the registry entry's, then the setting `minituner sweep` chose on
`classify` (minituner/assets/selected.json) — the same numbers `minituner compare` trains with.
"""

from __future__ import annotations

import argparse
import functools

from .experiments import selected_settings
from .methods import METHODS, ordered
from .methods.options import ConfigError, annotation_of, kinds

DEFAULT_TASK = "classify"  # the task whose sweep gives finetune its defaults


@functools.cache
def selected(key: str) -> dict:
    """The setting the sweep chose for method `key` on DEFAULT_TASK ({} for a method it never swept)."""
    return dict(selected_settings().get(DEFAULT_TASK, {}).get(key, {}))


def default_lr(key: str) -> float:
    lr = selected(key).get("lr")
    if lr is None:
        raise ValueError(f"--method {key} has no swept learning rate in the shipped selection; give --lr")
    return lr


def defaults(key: str) -> dict:
    """This method's default for each of its options."""
    entry, chosen = METHODS[key], selected(key)
    return {f.name: chosen.get(f.name, entry.default(f.name)) for f in entry.fields()}


def owners() -> dict[str, list[str]]:
    """Config field -> the methods (keys) that take it as an option, in the registry's order."""
    out: dict[str, list[str]] = {}
    for m in ordered():
        for f in m.fields():
            if f.metadata.get("cli", True):
                out.setdefault(f.name, []).append(m.key)
    return out


def words(value) -> str:
    """A default as the command line writes it: q_proj,v_proj for a tuple, none for None, 'the cat' for text."""
    if isinstance(value, tuple):
        return ",".join(value)
    if value is None:
        return "none"
    return repr(value) if isinstance(value, str) and " " in value else str(value)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse(kind: str):
    def parse(text: str):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind == 'int' else 'a number'}, "
                                             f"got {text!r}") from None
    return parse


def add_method_options(parser: argparse.ArgumentParser) -> None:
    """One option per config field of the registered methods, grouped by the methods that take it."""
    groups: dict[tuple, argparse._ArgumentGroup] = {}
    for name, keys in owners().items():
        entry = METHODS[keys[0]]
        field = next(f for f in entry.fields() if f.name == name)
        allowed = kinds(annotation_of(entry.config, name))
        shown = {k: words(defaults(k)[name]) for k in keys}
        default = next(iter(shown.values())) if len(set(shown.values())) == 1 else \
            ", ".join(f"{k} {v}" for k, v in shown.items())
        text = field.metadata["help"]
        text += "" if "default" in text else f" (default: {default})"
        group = groups.get(tuple(keys)) or groups.setdefault(tuple(keys), parser.add_argument_group(", ".join(keys)))
        if "bool" in allowed:
            group.add_argument(flag(name), action=argparse.BooleanOptionalAction, default=None, help=text)
        elif field.metadata.get("choices"):
            group.add_argument(flag(name), choices=field.metadata["choices"], default=None, help=text)
        elif {"int", "float"} & allowed:
            group.add_argument(flag(name), type=_parse("int" if "int" in allowed else "float"), default=None,
                               help=text)
        else:
            group.add_argument(flag(name), default=None, help=text)


def method_config(args):
    """The chosen method's config from the command line; an option of another method is refused, and a
    value outside its domain is the config's own error, named by its option."""
    key, entry = args.method, METHODS[args.method]
    mine = {f.name for f in entry.fields()}
    given = {name: getattr(args, name) for name in owners() if getattr(args, name, None) is not None}
    foreign = sorted(flag(n) for n in given if n not in mine)
    if foreign:
        raise ValueError(f"--method {key} takes no {', '.join(foreign)} (they belong to "
                         f"{', '.join(sorted({k for n in given if n not in mine for k in owners()[n]}))}); "
                         f"its options: {', '.join(flag(n) for n in sorted(mine & set(owners()))) or 'none'}")
    values = {**defaults(key), **given}
    if values.get("init") != "text" and "init_text" not in given:
        values.pop("init_text", None)  # an entry's default text goes with its default init only
    if "seed" in mine:
        values["seed"] = args.seed  # the run's --seed sets the method's random init too
    try:
        return entry.make_config(**values)
    except ConfigError as e:
        raise ValueError(f"argument {flag(e.field)}: {e}") from None
