"""Lesson 03 · 冻结: count what trains, in closed form. Check: minituner check 03_freeze_count

Write each function's body; the docstring states the formula and the shapes.
"""


def freeze_trainable(n_layer: int, n_embd: int, vocab_size: int, block_size: int, trainable_layers: int) -> int:
    """Trainable parameters when only the top `trainable_layers` blocks (and ln_f) train.

    One block (C = n_embd): ln_1, ln_2 (2C each), q, k, v, o (C·C + C each), up (C·4C + 4C),
    down (4C·C + C). ln_f: 2C. The embeddings stay frozen. Returns an int; no model may be built.
    """
    raise NotImplementedError
