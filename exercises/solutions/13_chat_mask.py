"""Solution · Lesson 13 · conversations: the chat loss mask. Check: minituner check 13_chat_mask

参考答案 · 第 13 课 · 对话：对话的损失掩码。检查：minituner check 13_chat_mask --lang zh
"""


def loss_mask(pieces: list[tuple[list[int], str]], train_on_prompt: bool = False, mask_history: bool = False):
    """(ids, mask) of a conversation from its rendered pieces [(token ids, role)], role in system/user/assistant.

    mask[i] = 1 where token i is a target the loss counts: assistant tokens; with mask_history only
    those of the last assistant turn; with train_on_prompt the system and user tokens too.
    Returns (ids, mask), two lists of ints of the same length.

    由一段对话渲染出的片段 [(token ids, role)] 求出它的 (ids, mask)，role 是 system/user/assistant 之一。

    mask[i] = 1 表示 token i 是损失要计入的目标：默认计入 assistant 的 token；mask_history 为真时
    只计入最后一轮 assistant 的 token；train_on_prompt 为真时，system 和 user 的 token 也计入。
    返回 (ids, mask)：两个等长的 int 列表。
    """
    last = max(i for i, (_, role) in enumerate(pieces) if role == "assistant")
    ids, mask = [], []
    for i, (piece, role) in enumerate(pieces):
        trained = train_on_prompt if role != "assistant" else (not mask_history or i == last)
        ids += piece
        mask += [int(trained)] * len(piece)
    return ids, mask
