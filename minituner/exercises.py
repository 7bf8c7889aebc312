"""``minituner check NN_name [FILE]``: grade a student's exercise against minituner's own code.

Each lesson ends with exercises (练习); a coding exercise is a file ``exercises/NN_name.py`` holding
one or more functions whose bodies say ``raise NotImplementedError``. The checker imports that
file by path (importlib; nothing is unpickled), calls each function on seeded random inputs and
shapes (and on the shipped base where it makes sense), and compares the answer with the function
minituner itself uses. Per case it prints pass or fail; on a failure the case, the expected and the
actual value (for a shape error, the shapes), and a hint when the answer is a known mistake
(a transposed matrix, the mask off by one, α instead of α/r).

The exercises are data: ``EXERCISES`` maps a name to its tasks, each a reference function, a case
generator and the typical mistakes. Exit status: 0 all cases hold, 1 a case fails, 2 bad input.
"""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import torch

from .analysis import truncate
from .bpe import merge_pair
from .chat import render_ids, segments
from .dataset import encode_rows
from .experiments.aggregate import mean_std
from .functional import cross_entropy_plain, linear
from .i18n import check_language, language, translations
from .intrinsic import d90, hadamard
from .methods import FreezeConfig, get_peft_model
from .methods.lora import LoRALinear
from .methods.prefix import prefix_parameter_count
from .methods.prompt import prompt_parameter_count
from .model import GPT, GPTConfig, Linear
from .quant import dequantize_nf4, nf4_code_book, quantize_nf4

ROOT = Path(__file__).resolve().parents[1]  # a clone's root, where exercises/ lives


@dataclass
class Task:
    """One function a student writes: its name, minituner's own answer, the cases, the known mistakes."""

    name: str
    reference: Callable
    cases: Callable[[], list[tuple[str, tuple, dict]]]  # [(label, args, kwargs)], seeded
    mistakes: list[tuple[str, Callable]] = field(default_factory=list)  # (hint, a message; the wrong function)


# ---------------------------------------------------------------- the shipped base, loaded once
@cache
def shipped():
    from .gpt2 import load_any_base

    return load_any_base()  # (GPT, CharTokenizer)


def weight(name: str) -> torch.Tensor:
    return dict(shipped()[0].named_parameters())[name].detach().clone()


def rand(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g)


# ---------------------------------------------------------------- references (minituner's own code)
def lora_layer(W, b, A, B, alpha, r, names=("a",)) -> LoRALinear:
    """minituner's LoRALinear over Linear(W, b), adapters `names` with the given A (r, in), B (out, r)."""
    lin = Linear(W.size(1), W.size(0))
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(b)
    layer = LoRALinear(lin)
    for name, a_, b_ in zip(names, A if len(names) > 1 else [A], B if len(names) > 1 else [B]):
        layer.add(name, r, alpha, 0.0, False, 0)
        with torch.no_grad():
            layer.lora_A[name].copy_(a_)
            layer.lora_B[name].copy_(b_)
    layer.active = names[0]
    return layer


@torch.no_grad()
def lora_forward_ref(x, W, b, A, B, alpha, r):
    return lora_layer(W, b, A, B, alpha, r)(x)


@torch.no_grad()
def lora_merge_ref(W, A, B, alpha, r):
    layer = lora_layer(W, torch.zeros(W.size(0)), A, B, alpha, r)
    layer.merge("a")
    return layer.weight.detach().clone()


@torch.no_grad()
def switch_ref(W_merged, A1, B1, A2, B2, alpha, r):
    layer = lora_layer(W_merged, torch.zeros(W_merged.size(0)), (A1, A2), (B1, B2), alpha, r, names=("a", "b"))
    layer.merged_adapters = ["a"]  # W_merged already holds ΔW of "a"
    layer.unmerge()  # W ← (W + ΔW) − ΔW
    layer.merge("b")  # W ← W + ΔW′
    return layer.weight.detach().clone()


def answer_mask_ref(n_prompt: int, n_answer: int) -> torch.Tensor:
    tok = shipped()[1]
    ids = [tok.pad_id] * (n_prompt + n_answer)
    split = encode_rows("exercise", [(ids, [0] * n_prompt + [1] * n_answer)], [("", "")], ["case"], tok)
    return split.mask[0]  # (n_prompt + n_answer − 1,)


def freeze_ref(n_layer: int, n_embd: int, vocab_size: int, block_size: int, trainable_layers: int) -> int:
    torch.manual_seed(0)
    base = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=1, n_embd=n_embd))
    model = get_peft_model(base, FreezeConfig(trainable_layers=trainable_layers))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def prepend_prompt_ref(P, X):
    return torch.cat([P.expand(X.size(0), -1, -1), X], dim=1)  # (B, k + T, C): model.py, the soft prompt


def prepend_prefix_ref(prefix_k, k):
    return torch.cat([prefix_k.expand(k.size(0), -1, -1, -1), k], dim=2)  # (B, nh, n + T, hs): model.py


def nf4_ref(w, code_book):
    return dequantize_nf4(quantize_nf4(w, double_quant=False))


def chat_mask_ref(messages, template, train_on_prompt=False, mask_history=False):
    return render_ids(messages, template, shipped()[1], train_on_prompt, mask_history)


# ---------------------------------------------------------------- the cases (seeded)
def linear_cases():
    g = torch.Generator().manual_seed(0)
    W = weight("h.0.mlp.up_proj.weight")
    return [("x (5, 3), W (4, 3), b (4,)", (rand(g, 5, 3), rand(g, 4, 3), rand(g, 4)), {}),
            ("x (2, 7, 6), W (6, 6) square, b (6,)", (rand(g, 2, 7, 6), rand(g, 6, 6), rand(g, 6)), {}),
            ("the shipped base's h.0.mlp.up_proj on 4 tokens",
             (rand(g, 4, W.size(1)), W, weight("h.0.mlp.up_proj.bias")), {})]


def loss_cases():
    g = torch.Generator().manual_seed(1)
    model, tok = shipped()
    ids = torch.tensor([tok.encode("it says meow, so it is the cat")])
    with torch.no_grad():
        logits = model(ids[:, :-1])
        logits = getattr(logits, "logits", logits)
    return [("logits (2, 3, 5)", (rand(g, 2, 3, 5) * 3, torch.randint(0, 5, (2, 3), generator=g)), {}),
            ("logits (1, 9, 35), large values", (rand(g, 1, 9, 35) * 40, torch.randint(0, 35, (1, 9), generator=g)), {}),
            ("the shipped base on 'it says meow, so it is the cat'", (logits, ids[:, 1:]), {})]


def answer_mask_cases():
    return [(f"n_prompt={p}, n_answer={a}", (p, a), {}) for p, a in ((3, 2), (1, 4), (10, 1), (6, 6))]


def masked_loss_cases():
    g = torch.Generator().manual_seed(2)
    out = []
    for B, T, V in ((1, 5, 4), (3, 8, 35)):
        mask = (torch.rand(B, T, generator=g) > 0.5).float()
        mask[:, -1] = 1
        out.append((f"logits ({B}, {T}, {V}), half the positions masked",
                    (rand(g, B, T, V), torch.randint(0, V, (B, T), generator=g), mask), {}))
    return out


def freeze_cases():
    c = shipped()[0].config
    out = [(f"the shipped base ({c.n_layer} blocks, C={c.n_embd}), top {n} trainable",
            (c.n_layer, c.n_embd, c.vocab_size, c.block_size, n), {}) for n in (1, 2, c.n_layer)]
    return out + [("6 blocks, C=8, vocab 11, context 5, top 3", (6, 8, 11, 5, 3), {})]


def prompt_cases():
    g = torch.Generator().manual_seed(3)
    C = shipped()[0].config.n_embd
    return [("P (2, 4), X (3, 5, 4)", (rand(g, 2, 4), rand(g, 3, 5, 4)), {}),
            (f"P (8, {C}), X (1, 6, {C}): the shipped base's width", (rand(g, 8, C), rand(g, 1, 6, C)), {})]


def count_cases(*names):
    return lambda: [(", ".join(f"{n}={v}" for n, v in zip(names, vals)), vals, {})
                    for vals in ((4, 64, 4)[: len(names)], (20, 768, 12)[: len(names)], (1, 3, 2)[: len(names)])]


def prefix_cases():
    g = torch.Generator().manual_seed(4)
    return [("prefix_k (4, 3, 16), k (2, 4, 5, 16)", (rand(g, 4, 3, 16), rand(g, 2, 4, 5, 16)), {}),
            ("prefix_k (1, 10, 8), k (3, 1, 1, 8)", (rand(g, 1, 10, 8), rand(g, 3, 1, 1, 8)), {})]


def lora_forward_cases():
    g = torch.Generator().manual_seed(5)
    W = weight("h.0.attn.q_proj.weight")
    C = W.size(0)
    return [("x (3, 6), W (5, 6), r=2, alpha=8", (rand(g, 3, 6), rand(g, 5, 6), rand(g, 5), rand(g, 2, 6), rand(g, 5, 2), 8.0, 2), {}),
            ("x (2, 4, 6), W (6, 6) square, r=3, alpha=1",
             (rand(g, 2, 4, 6), rand(g, 6, 6), rand(g, 6), rand(g, 3, 6), rand(g, 6, 3), 1.0, 3), {}),
            ("the shipped base's h.0.attn.q_proj, r=4, alpha=16",
             (rand(g, 4, C), W, weight("h.0.attn.q_proj.bias"), rand(g, 4, C), rand(g, C, 4), 16.0, 4), {})]


def lora_merge_cases():
    return [(label, (W, A, B, alpha, r), {}) for label, (x, W, b, A, B, alpha, r), _ in lora_forward_cases()]


def switch_cases():
    g = torch.Generator().manual_seed(6)
    out = []
    for label, (W0, r, alpha) in (("W (5, 6), r=2, alpha=8", (rand(g, 5, 6), 2, 8.0)),
                                  ("the shipped base's h.1.mlp.down_proj, r=4, alpha=16",
                                   (weight("h.1.mlp.down_proj.weight"), 4, 16.0))):
        o, i = W0.shape
        A1, B1, A2, B2 = rand(g, r, i), rand(g, o, r), rand(g, r, i), rand(g, o, r)
        out.append((label, (lora_merge_ref(W0, A1, B1, alpha, r), A1, B1, A2, B2, alpha, r), {}))
    return out


def mean_std_cases():
    rng = random.Random(7)
    return [("3 seeds", ([0.81, 0.84, 0.79],), {}), ("one seed: std 0", ([0.5],), {}),
            ("5 random scores", ([rng.random() for _ in range(5)],), {})]


def truncate_cases():
    g = torch.Generator().manual_seed(8)
    W = weight("h.2.attn.o_proj.weight")
    return [("ΔW (6, 4), r=2", (rand(g, 6, 4), 2), {}), ("ΔW (3, 7), r=1", (rand(g, 3, 7), 1), {}),
            ("the shipped base's h.2.attn.o_proj as ΔW, r=8", (W, 8), {})]


def merge_pair_cases():
    rng = random.Random(9)
    out = [("('a', 'a', 'a') and ('a', 'a')", (("a", "a", "a"), ("a", "a")), {}),
           ("('l', 'o', 'w', 'e', 'r') and ('w', 'e')", (tuple("lower"), ("w", "e")), {}),
           ("no occurrence", (tuple("cat"), ("x", "y")), {})]
    for _ in range(3):
        word = tuple(rng.choice("ab") for _ in range(9))
        out.append((f"random word {''.join(word)!r} and ('a', 'b')", (word, ("a", "b")), {}))
    return out


def nf4_cases():
    g = torch.Generator().manual_seed(10)
    return [("w (64,): one block", (rand(g, 64), nf4_code_book()), {}),
            ("w (4, 48): three blocks", (rand(g, 4, 48) * 5, nf4_code_book()), {}),
            ("the shipped base's h.0.mlp.up_proj", (weight("h.0.mlp.up_proj.weight"), nf4_code_book()), {})]


def hadamard_cases():
    g = torch.Generator().manual_seed(11)
    return [("x (1,)", (rand(g, 1),), {}), ("x (2,)", (rand(g, 2),), {}), ("x (8,)", (rand(g, 8),), {}),
            ("x (3, 16)", (rand(g, 3, 16),), {})]


def d90_cases():
    return [("reaches 90% at d=100", ([10, 100, 1000], [0.5, 0.91, 0.99], 1.0), {}),
            ("unsorted ds", ([1000, 10, 100], [0.99, 0.5, 0.95], 1.0), {}),
            ("never reaches it", ([10, 100], [0.1, 0.2], 1.0), {})]


def chat_cases():
    rng = random.Random(12)
    tok = shipped()[1]

    def words(n):
        return " ".join("".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 4))) for _ in range(n))

    out = []
    for n, (template, tp, mh) in enumerate((("chatml", False, False), ("chatml", False, True), ("llama2", True, False),
                                            ("chatglm3", False, False), ("baichuan", False, True))):
        msgs = [{"role": "system", "content": words(2)}] if n % 2 == 0 else []
        for _ in range(1 + n % 3):
            msgs += [{"role": "user", "content": words(2)}, {"role": "assistant", "content": words(2)}]
        pieces = [(tok.encode(text), role) for text, role in segments(msgs, template)]
        out.append((f"{template}, {len(msgs)} turns, train_on_prompt={tp}, mask_history={mh}", (pieces,),
                    {"train_on_prompt": tp, "mask_history": mh, "_ref": (msgs, template)}))
    return out


def chat_ref(pieces, train_on_prompt=False, mask_history=False, _ref=None):
    return chat_mask_ref(*_ref, train_on_prompt=train_on_prompt, mask_history=mask_history)


# ---------------------------------------------------------------- the table: exercise -> tasks
def T(name, reference, cases, *mistakes):
    return Task(name, reference, cases, list(mistakes))


EXERCISES: dict[str, list[Task]] = {
    "00_linear": [T("linear", linear, linear_cases,
                    ("x @ W: W needs its transpose, y = x Wᵀ + b (W is (out, in))",
                     lambda x, W, b: x @ W + b),
                    ("the bias b is missing", lambda x, W, b: x @ W.T))],
    "01_next_token_loss": [T("next_token_loss", cross_entropy_plain, loss_cases,
                             ("a sum, not a mean over the B·T positions", lambda z, y: cross_entropy_plain(z, y) * y.numel()),
                             ("the sign: the loss is −log p", lambda z, y: -cross_entropy_plain(z, y)))],
    "02_answer_mask": [T("answer_mask", answer_mask_ref, answer_mask_cases,
                         ("off by one: mask[t] is about y[t] = ids[t + 1], so the first answer token is at "
                          "t = n_prompt − 1",
                          lambda p, a: torch.tensor([0.0] * p + [1.0] * (a - 1)))),
                       T("masked_loss", cross_entropy_plain, masked_loss_cases,
                         ("a mean over every position: divide by Σ m_t, the kept positions only",
                          lambda z, y, m: cross_entropy_plain(z, y, m) * m.sum() / m.numel()))],
    "03_freeze_count": [T("freeze_trainable", freeze_ref, freeze_cases,
                          ("ln_f (2·C) trains with the top blocks", lambda L, C, V, T_, N: N * (12 * C * C + 13 * C)))],
    "04_soft_prompt": [T("prepend_prompt", prepend_prompt_ref, prompt_cases,
                         ("[X; P]: the soft prompt goes first, X′ = [P; X]", lambda P, X: torch.cat([X, P.expand(X.size(0), -1, -1)], 1))),
                       T("prompt_params", prompt_parameter_count, count_cases("n_virtual", "d"))],
    "05_prefix_kv": [T("prepend_prefix", prepend_prefix_ref, prefix_cases,
                       ("[k; prefix]: the prefix goes first", lambda pk, k: torch.cat([k, pk.expand(k.size(0), -1, -1, -1)], 2))),
                     T("prefix_params", prefix_parameter_count, count_cases("n_virtual", "d", "n_layer"),
                       ("keys only: each layer has a prefix for keys AND one for values (×2)",
                        lambda n, d, L: n * d * L))],
    "06_lora": [T("lora_forward", lora_forward_ref, lora_forward_cases,
                  ("α instead of α/r: the scale is alpha / r", lambda x, W, b, A, B, a, r: x @ W.T + b + a * (x @ A.T) @ B.T),
                  ("W not transposed: y = x Wᵀ + b", lambda x, W, b, A, B, a, r: x @ W + b + a / r * (x @ A.T) @ B.T),
                  ("the scale α/r is missing", lambda x, W, b, A, B, a, r: x @ W.T + b + (x @ A.T) @ B.T)),
                T("lora_merge", lora_merge_ref, lora_merge_cases,
                  ("α instead of α/r: ΔW = (alpha / r) · B A", lambda W, A, B, a, r: W + a * B @ A),
                  ("the scale α/r is missing", lambda W, A, B, a, r: W + B @ A))],
    "07_lora_switch": [T("switch", switch_ref, switch_cases,
                         ("ΔW was not taken out first: (W + ΔW) − ΔW + ΔW′", lambda W, A1, B1, A2, B2, a, r: W + a / r * B2 @ A2))],
    "08_mean_std": [T("mean_std", mean_std, mean_std_cases,
                      ("the population std (÷n): over seeds use the sample std (÷(n − 1))",
                       lambda v: (sum(v) / len(v), math.sqrt(sum((x - sum(v) / len(v)) ** 2 for x in v) / len(v)))))],
    "09_truncate": [T("truncate", truncate, truncate_cases,
                      ("Σ_r is missing: [ΔW]_r = U_r Σ_r V_rᵀ", lambda dw, r: (lambda U, S, Vh: U[:, :r] @ Vh[:r])(*torch.linalg.svd(dw, full_matrices=False))))],
    "10_bpe_merge": [T("merge_pair", merge_pair, merge_pair_cases)],
    "11_nf4": [T("nf4_roundtrip", nf4_ref, nf4_cases,
                 ("one scale for the whole tensor: every block of 64 has its own absmax",
                  lambda w, q: (q[((w.reshape(-1, 1) / w.abs().max()) - q).abs().argmin(-1)] * w.abs().max()).view(w.shape)))],
    "12_hadamard": [T("hadamard", hadamard, hadamard_cases,
                      ("scaled by 1/√L: minituner's H is unscaled", lambda x: hadamard(x) / math.sqrt(x.shape[-1]))),
                    T("d90", d90, d90_cases)],
    "13_chat_mask": [T("loss_mask", chat_ref, chat_cases)],
}


# ---------------------------------------------------------------- comparing, in two languages


def words(lang: str | None):
    """The report's words in `lang` (default: the run's language, minituner.i18n; Chinese when LANG is a Chinese
    locale): the catalogue's gettext (minituner/locale/zh/exercises.po)."""
    return translations(check_language(lang) if lang else language()).gettext


def describe(v) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor {tuple(v.shape)}" if v.numel() > 12 else f"tensor {v.tolist()}"
    if isinstance(v, (list, tuple)) and len(v) > 12:
        return f"{type(v).__name__} of {len(v)}"
    return repr(v)


def difference(expected, actual, w) -> str | None:
    """None when actual equals expected (tensors: allclose), else what differs, in words."""
    if isinstance(expected, torch.Tensor):
        if isinstance(actual, (list, tuple, int, float)) and not isinstance(actual, bool):
            try:
                actual = torch.tensor(actual, dtype=expected.dtype)
            except (TypeError, ValueError):
                pass
        if not isinstance(actual, torch.Tensor):
            return w('type: expected {e}, got {a}').format(e="torch.Tensor", a=type(actual).__name__)
        if tuple(actual.shape) != tuple(expected.shape):
            return w('shape: expected {e}, got {a}').format(e=tuple(expected.shape), a=tuple(actual.shape))
        a, e = actual.detach().double(), expected.detach().double()
        if torch.allclose(a, e, rtol=1e-4, atol=1e-4 * max(1.0, e.abs().max().item())):
            return None
        where = tuple(int(i) for i in torch.unravel_index((a - e).abs().argmax(), e.shape)) if e.dim() else ()
        return w('values differ (largest difference {d:.3g})').format(d=(a - e).abs().max().item()) + w('; at index {i}: expected {e}, got {a}').format(
            i=where, e=f"{e[where].item():.6g}", a=f"{a[where].item():.6g}")
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)):
            return w('type: expected {e}, got {a}').format(e=type(expected).__name__, a=type(actual).__name__)
        if len(actual) != len(expected):
            return w('length: expected {e}, got {a}').format(e=len(expected), a=len(actual))
        for e, a in zip(expected, actual):
            if (d := difference(e, a, w)) is not None:
                return d
        return None
    if isinstance(expected, float) or isinstance(actual, float):
        if not isinstance(actual, (int, float)) or isinstance(actual, bool):
            return w('type: expected {e}, got {a}').format(e="float", a=type(actual).__name__)
        return None if math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-9) else w('values differ (largest difference {d:.3g})').format(
            d=abs(actual - expected))
    return None if actual == expected else f"{describe(expected)} ≠ {describe(actual)}"


def clone(args):
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"minituner_exercise_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exercise_file(name: str, file=None) -> Path:
    """The student's file: FILE, or exercises/NAME.py in the clone (then in the current folder)."""
    if file is not None:
        path = Path(file)
    else:
        path = next((p for p in (ROOT / "exercises" / f"{name}.py", Path("exercises") / f"{name}.py") if p.is_file()),
                    ROOT / "exercises" / f"{name}.py")
    if not path.is_file():
        raise ValueError(f"no file {path}; give the path of your exercise file: minituner check {name} FILE")
    return path


def check_name(name: str) -> None:
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; the exercises are: {', '.join(EXERCISES)}")


def hint(task: Task, args, w, out, actual=None, raised: Exception | None = None) -> None:
    """Print the hint of the first known mistake that gives the same answer (or raises the same error)."""
    for why, wrong in task.mistakes:
        try:
            guess = wrong(*clone(args))
        except Exception as e:
            same = raised is not None and type(e) is type(raised) and str(e) == str(raised)
        else:
            same = raised is None and difference(guess, actual, w) is None
        if same:
            print(f"    {w('hint')}: {w(why)}", file=out)
            return


def check(name: str, file=None, lang: str | None = None, out=None) -> int:
    """Grade exercise `name` in `file`; print per case pass/fail; 0 all hold, 1 a case fails (ValueError: bad input)."""
    check_name(name)
    out = out or sys.stdout
    w = words(lang)
    path = exercise_file(name, file)
    try:
        module = load(path)
    except Exception as e:  # the student's file: a syntax error is theirs to fix, not bad input
        print(f"{w('FAIL')}: " + w('{file} could not be imported: {err}').format(file=path, err=f"{type(e).__name__}: {e}"), file=out)
        return 1
    total = failed = 0
    for task in EXERCISES[name]:
        fn = getattr(module, task.name, None)
        if not callable(fn):
            print(f"{w('FAIL')}: " + w('{file} has no function {f}').format(file=path, f=task.name), file=out)
            failed += 1
            total += 1
            continue
        for label, args, kwargs in task.cases():
            total += 1
            expected = task.reference(*clone(args), **kwargs)
            public = {k: v for k, v in kwargs.items() if not k.startswith("_")}
            try:
                with torch.no_grad():
                    actual = fn(*clone(args), **public)
            except NotImplementedError:
                print(f"{w('FAIL')} {task.name} · {w('case')} {label}: " + w('not written yet: {f} raises NotImplementedError (replace it with your code)').format(f=task.name), file=out)
                failed += 1
                break  # one line is enough for an untouched skeleton
            except Exception as e:
                failed += 1
                shapes = ", ".join(f"tensor {tuple(a.shape)}" if isinstance(a, torch.Tensor) else describe(a)
                                   for a in args)
                print(f"{w('FAIL')} {task.name} · {w('case')} {label}: "
                      + w('{f} raised {err}').format(f=task.name, err=f"{type(e).__name__}: {e}"), file=out)
                print(f"    {w('inputs')}: {shapes}", file=out)
                hint(task, args, w, out, raised=e)
                continue
            problem = difference(expected, actual, w)
            if problem is None:
                print(f"{w('pass')} {task.name} · {w('case')} {label}", file=out)
                continue
            failed += 1
            print(f"{w('FAIL')} {task.name} · {w('case')} {label}: {problem}", file=out)
            print(f"    {w('expected')}: {describe(expected)}", file=out)
            print(f"    {w('actual')}: {describe(actual)}", file=out)
            hint(task, args, w, out, actual=actual)
    if failed:
        print(w('{k} of {n} cases fail').format(k=failed, n=total), file=out)
        return 1
    print(w('all {n} cases hold: {name} is right').format(n=total, name=name), file=out)
    return 0
