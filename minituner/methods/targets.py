"""Which Linear layers a config's ``target_modules`` names (LoRA and its kin, (IA)³), as PEFT reads it.

    ("q_proj", "v_proj")      a list: a module matches a name equal to its full name or to its end
                              ("q_proj" matches "h.0.attn.q_proj"; "h.0.attn.q_proj" only that one)
    "q_proj,v_proj"           a comma list of plain names: the same as the list (the command line's form)
    "all" / "all-linear"      every Linear (PEFT's "all-linear" leaves out the output head; ours is
                              tied to wte and is no Linear, so the two are the same set here)
    r"h\\.[01]\\..*_proj"       any other string: a regular expression matched against the full name
                              (PEFT's re.fullmatch); a lone name also matches as a last name, so
                              "q_proj" works where PEFT would find no module
GPT-2's own names, as PEFT means them on GPT-2 (a list's entries, alone or at the end of a full name):
"c_attn" is q_proj, k_proj and v_proj (GPT-2 fuses them); "c_proj" both attn.c_proj and mlp.c_proj,
i.e. o_proj and down_proj; "c_fc" up_proj; "attn.c_proj" o_proj; "mlp.c_proj" down_proj.
A name that matches nothing is a ValueError listing the model's Linear modules.
"""

from __future__ import annotations

import re

from ..checks import refuse
from ..model import Linear

GPT2_NAMES = {"attn.c_attn": ("attn.q_proj", "attn.k_proj", "attn.v_proj"), "c_attn": ("q_proj", "k_proj", "v_proj"),
              "attn.c_proj": ("attn.o_proj",), "mlp.c_proj": ("mlp.down_proj",), "c_proj": ("o_proj", "down_proj"),
              "mlp.c_fc": ("mlp.up_proj",), "c_fc": ("up_proj",)}  # longest first: "h.0.attn.c_proj" is attn's


def ours(target: str) -> list[str]:
    """A target in GPT-2's names as ours ("h.0.attn.c_attn" -> "h.0.attn.q_proj", …); others as they are."""
    for gpt2, mine in GPT2_NAMES.items():
        if target == gpt2 or target.endswith("." + gpt2):
            return [target.removesuffix(gpt2) + m for m in mine]
    return [target]


def replace_module(model, name: str, new):
    """Put `new` where the submodule `name` ("h.0.attn.q_proj") is; returns new."""
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent), leaf, new)
    return new


def linear_names(model) -> list[str]:
    """The full names of the model's Linear layers (a wrapper, which holds its Linear as ``base_layer``,
    by the wrapper's name), in order."""
    return [n for n, m in model.named_modules()
            if hasattr(m, "base_layer") or (isinstance(m, Linear) and not n.endswith(".base_layer"))]


def resolve_targets(model, targets, field: str = "target_modules") -> list[str]:
    """target_modules -> the full names of the Linear modules they match, in the model's order (field: the
    config field the names came from, for the error)."""
    names = linear_names(model)
    kinds = sorted({n.rsplit(".", 1)[-1] for n in names})
    if targets in ("all", "all-linear"):
        return names
    if isinstance(targets, str):  # PEFT: a regular expression, matched against the whole name
        hit = [n for n in names if re.fullmatch(targets, n) or re.fullmatch(targets, n.rsplit(".", 1)[-1])]
        if not hit:
            raise refuse(ValueError, field, f"{field}={targets!r} (a regular expression) matches none of the "
                                            f"model's Linear modules: {', '.join(names)}")
        return hit
    chosen = set()
    for t in [m for target in targets for m in ours(target)]:
        hit = [n for n in names if n == t or n.endswith("." + t)]
        if not hit:
            raise refuse(ValueError, field, f"{field}: unknown target {t!r}; the model's Linear modules are "
                                            f"{', '.join(kinds)} (or full names such as {names[0]!r}), 'all', or a "
                                            "regular expression")
        chosen.update(hit)
    return [n for n in names if n in chosen]


def module_names(model, modules) -> list[str]:
    """modules_to_save -> the full names of the modules named (equal to, or ending in, a name)."""
    names = [n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))
             or isinstance(m, Linear) or hasattr(m, "original_module")]  # a ModulesToSaveWrapper by its own name
    out = []
    for t in modules:
        hit = [n for n in names if (n == t or n.endswith("." + t)) and not n.endswith(".base_layer")
               and ".original_module" not in n and ".modules_to_save." not in n]
        if not hit:
            raise refuse(ValueError, "modules_to_save", f"modules_to_save: no module named {t!r} (e.g. ln_f, h.0.ln_1, wpe)")
        out += [n for n in hit if n not in out]
    return out
