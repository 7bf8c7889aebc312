"""Lesson 13 · conversations: the chat loss mask. Check: minituner check 13_chat_mask

Write each function's body; the docstring states the formula and the shapes.
"""


def loss_mask(pieces: list[tuple[list[int], str]], train_on_prompt: bool = False, mask_history: bool = False):
    """(ids, mask) of a conversation from its rendered pieces [(token ids, role)], role in system/user/assistant.

    mask[i] = 1 where token i is a target the loss counts: assistant tokens; with mask_history only
    those of the last assistant turn; with train_on_prompt the system and user tokens too.
    Returns (ids, mask), two lists of ints of the same length.
    """
    raise NotImplementedError
