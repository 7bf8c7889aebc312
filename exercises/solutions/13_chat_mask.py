"""Solution · Lesson 13 · conversations: the chat loss mask. Check: minituner check 13_chat_mask
"""


def loss_mask(pieces: list[tuple[list[int], str]], train_on_prompt: bool = False, mask_history: bool = False):
    """(ids, mask) of a conversation from its rendered pieces [(token ids, role)], role in system/user/assistant.

    mask[i] = 1 where token i is a target the loss counts: assistant tokens; with mask_history only
    those of the last assistant turn; with train_on_prompt the system and user tokens too.
    Returns (ids, mask), two lists of ints of the same length.
    """
    last = max(i for i, (_, role) in enumerate(pieces) if role == "assistant")
    ids, mask = [], []
    for i, (piece, role) in enumerate(pieces):
        trained = train_on_prompt if role != "assistant" else (not mask_history or i == last)
        ids += piece
        mask += [int(trained)] * len(piece)
    return ids, mask
