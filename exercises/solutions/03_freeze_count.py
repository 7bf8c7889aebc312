"""Solution · Lesson 03 · 冻结: count what trains, in closed form. Check: minituner check 03_freeze_count
"""


def freeze_trainable(n_layer: int, n_embd: int, vocab_size: int, block_size: int, trainable_layers: int) -> int:
    """Trainable parameters when only the top `trainable_layers` blocks (and ln_f) train.

    One block (C = n_embd): ln_1, ln_2 (2C each), q, k, v, o (C·C + C each), up (C·4C + 4C),
    down (4C·C + C). ln_f: 2C. The embeddings stay frozen. Returns an int; no model may be built.
    """
    C = n_embd
    block = 12 * C * C + 13 * C
    return trainable_layers * block + (2 * C if trainable_layers > 0 else 0)
