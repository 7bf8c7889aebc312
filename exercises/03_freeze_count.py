"""Lesson 03 · 冻结: count what trains, in closed form. Check: minituner check 03_freeze_count

Write each function's body; the docstring states the formula and the shapes.

第 03 课 · 冻结：用闭式公式数出要训练的参数。检查：minituner check 03_freeze_count --lang zh

写出每个函数的函数体；文档字符串里写明了公式和形状。
"""


def freeze_trainable(n_layer: int, n_embd: int, vocab_size: int, block_size: int, trainable_layers: int) -> int:
    """Trainable parameters when only the top `trainable_layers` blocks (and ln_f) train.

    One block (C = n_embd): ln_1, ln_2 (2C each), q, k, v, o (C·C + C each), up (C·4C + 4C),
    down (4C·C + C). ln_f: 2C. The embeddings stay frozen. Returns an int; no model may be built.

    只训练最上面 `trainable_layers` 个块（以及 ln_f）时的可训练参数个数。

    一个块（C = n_embd）：ln_1、ln_2（各 2C），q、k、v、o（各 C·C + C），up（C·4C + 4C），
    down（4C·C + C）。ln_f：2C。嵌入保持冻结。返回一个 int；不能构建任何模型。
    """
    raise NotImplementedError
