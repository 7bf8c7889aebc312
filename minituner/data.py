"""The mini-world: a small generated world of animals, and every text the course trains on.

No downloads: everything is made here from a seed.

The world: each animal has four facts, a sound, a food, a home and a colour,
each value belonging to one animal only (so any one fact names the animal).
The article's own example is recognising animals, then only cats and dogs (§4).

From it:
- ``make_corpus``: the pretraining text, every fact stated in both directions
  ("the cat eats fish." and "the animal that eats fish is the cat."), since a
  model taught only "A is B" does not answer "what is B" (the reversal curse,
  Berglund et al. 2023);
- ``make_task``: three downstream tasks in prompt -> answer form, the loss on
  answer tokens only (as PEFT and LLaMA-Factory train):
    "classify":  "it says meow and it eats fish, so it is the" -> " cat."
    "relabel":   the same descriptions, cat and dog swapped (article §4 step 3:
                 what was recognised as a cat is now to be called a dog);
    "qa":        "q: what does the cat eat?\na:" -> " the cat eats fish."
                 a question format the corpus never uses.

The held-out split needs pretraining: for each animal two of its four fact
kinds are shown in the task's training split and the other two only in the
test split (which two differs per animal). The corpus states all four, so a
pretrained base can answer the test; a model trained on the task alone cannot.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from .tokenizer import CharTokenizer

ANIMALS = {  # name: sound
    "cat": "meow", "dog": "woof", "cow": "moo", "pig": "oink", "duck": "quack", "owl": "hoot",
    "sheep": "baa", "horse": "neigh", "hen": "cluck", "frog": "croak", "lion": "roar",
    "snake": "hiss", "bee": "buzz", "mouse": "squeak", "wolf": "howl", "crow": "caw",
    "goat": "bleat", "donkey": "bray", "bear": "growl", "dove": "coo", "goose": "honk",
    "turkey": "gobble", "cricket": "chirp", "monkey": "chatter",
}
FOODS = ["fish", "bones", "grass", "corn", "seeds", "worms", "nuts", "honey", "berries", "bugs",
         "leaves", "apples", "carrots", "eggs", "roots", "hay", "figs", "rice", "oats", "beans",
         "clover", "acorns", "melons", "pears"]
HOMES = ["house", "barn", "pond", "forest", "cave", "nest", "hive", "field", "den", "river",
         "meadow", "hill", "garden", "swamp", "desert", "jungle", "farm", "lake", "shed", "tree",
         "marsh", "valley", "stable", "island"]
COLOURS = ["red", "blue", "green", "brown", "black", "white", "grey", "pink", "orange", "yellow",
           "purple", "gold", "silver", "tan", "cream", "violet", "teal", "olive", "navy", "rust",
           "amber", "ivory", "coral", "lilac"]
KINDS = ("sound", "food", "home", "colour")

# How each fact kind is said, forwards (animal -> value) and backwards (value -> animal).
FORWARD = {"sound": "the {a} says {v}.", "food": "the {a} eats {v}.",
           "home": "the {a} lives in the {v}.", "colour": "the {a} is {v}."}
BACKWARD = {"sound": "the animal that says {v} is the {a}.", "food": "the animal that eats {v} is the {a}.",
            "home": "the animal that lives in the {v} is the {a}.", "colour": "the animal that is {v} is the {a}."}
# The corpus also says each fact in other words. A fact met in one phrasing only is stored
# tied to that phrasing, and fine-tuning cannot reach it from a new one; paraphrases in
# pretraining make it extractable (Allen-Zhu & Li 2023, Physics of Language Models 3.1).
PARAPHRASES = {
    "sound": ["if you hear {v}, that is the {a}.", "listen: the {a} goes {v}."],
    "food": ["give it {v} and you will find the {a}.", "for dinner the {a} wants {v}."],
    "home": ["in the {v} you find the {a}.", "the home of the {a} is the {v}."],
    "colour": ["something {v} in the grass? the {a}.", "the colour of the {a} is {v}."],
}
CLAUSE = {"sound": "it says {v}", "food": "it eats {v}", "home": "it lives in the {v}", "colour": "it is {v}"}
QUESTION = {"sound": "q: what does the {a} say?\na:", "food": "q: what does the {a} eat?\na:",
            "home": "q: where does the {a} live?\na:", "colour": "q: what colour is the {a}?\na:"}
TASKS = ("classify", "relabel", "qa")


@dataclass
class World:
    """facts[animal][kind] = value; seen[animal] = the two fact kinds a task's training split shows."""

    facts: dict
    seen: dict

    @property
    def animals(self) -> list[str]:
        return list(self.facts)


def make_world(seed: int = 0) -> World:
    """A world from a seed: foods, homes and colours dealt to the animals, and per animal
    which two fact kinds the tasks' training splits may show."""
    rng = random.Random(seed)
    names = list(ANIMALS)
    foods, homes, colours = (rng.sample(pool, len(names)) for pool in (FOODS, HOMES, COLOURS))
    facts, seen = {}, {}
    for i, a in enumerate(names):
        facts[a] = {"sound": ANIMALS[a], "food": foods[i], "home": homes[i], "colour": colours[i]}
        seen[a] = tuple(sorted(rng.sample(KINDS, 2), key=KINDS.index))
    return World(facts, seen)


def corpus_sentences(world: World) -> list[str]:
    """Every fact of the world, said forwards, backwards, and in two paraphrases."""
    out = []
    for a, facts in world.facts.items():
        for kind, v in facts.items():
            out += [FORWARD[kind].format(a=a, v=v), BACKWARD[kind].format(a=a, v=v)]
            out += [t.format(a=a, v=v) for t in PARAPHRASES[kind]]
    return out


@dataclass
class Split:
    """Token rows ready to train on: x (N, L) inputs, y (N, L) next tokens, mask (N, L) where the loss counts.

    ``examples`` keeps the (prompt, answer) text of each row (for tasks) or the row's text (corpus).
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    examples: list = field(default_factory=list)

    def __len__(self) -> int:
        return self.x.size(0)

    def batch(self, batch_size: int, generator: torch.Generator):
        """A random batch (rows drawn with replacement by the seeded generator)."""
        i = torch.randint(len(self), (batch_size,), generator=generator)
        return self.x[i], self.y[i], self.mask[i]


@dataclass
class Dataset:
    """A named pair of splits; tasks and the corpus look alike to train() and evaluate()."""

    name: str
    train: Split
    test: Split
    tokenizer: CharTokenizer
    world: World


def encode_examples(name: str, examples: list[tuple[str, str]], tok: CharTokenizer) -> Split:
    """(prompt, answer) pairs -> a Split whose mask covers the answer tokens only.

    Row text = prompt + answer; x = text[:-1], y = text[1:], right-padded with <pad>.
    mask[t] = 1 where y[t] is a character of the answer.
    """
    rows = [(tok.encode(p), tok.encode(a)) for p, a in examples]
    L = max(len(p) + len(a) for p, a in rows) - 1
    x = torch.full((len(rows), L), tok.pad_id, dtype=torch.long)
    y = torch.full((len(rows), L), tok.pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), L)
    for n, (p, a) in enumerate(rows):
        ids = torch.tensor(p + a)
        x[n, : len(ids) - 1] = ids[:-1]
        y[n, : len(ids) - 1] = ids[1:]
        mask[n, len(p) - 1 : len(ids) - 1] = 1.0
    return Split(name, x, y, mask, list(examples))


def _packed_rows(sentences: list[str], n_rows: int, length: int, rng: random.Random) -> list[str]:
    """Rows of exactly `length` characters, each starting at a sentence: random sentences joined by newlines."""
    rows = []
    for _ in range(n_rows):
        text = ""
        while len(text) < length:
            text += rng.choice(sentences) + "\n"
        rows.append(text[:length])
    return rows


def make_corpus(world_seed: int = 0, seed: int = 0, n_train: int = 20000, n_test: int = 256,
                length: int = 97) -> Dataset:
    """The pretraining corpus: rows of `length` characters (block_size + 1; 97 for the default GPTConfig).

    The test rows are drawn with another seed from the same sentences: held-out loss
    measures how well the model has learned the world's text, not unseen facts.
    """
    if length < 2:
        raise ValueError(f"a corpus row needs at least 2 characters (input and target), got {length}")
    tok, world = CharTokenizer(), make_world(world_seed)
    sentences = corpus_sentences(world)
    splits = []
    for name, n, s in (("train", n_train, seed), ("test", n_test, seed + 1_000_003)):
        rows = _packed_rows(sentences, n, length, random.Random(s))
        ids = torch.tensor([tok.encode(r) for r in rows])  # (n, length)
        splits.append(Split(name, ids[:, :-1], ids[:, 1:], torch.ones(n, length - 1), rows))
    return Dataset("corpus", splits[0], splits[1], tok, world)


def describe(world: World, animal: str, kinds: tuple[str, ...]) -> str:
    """'it says meow and it eats fish, so it is the' from the animal's facts of those kinds."""
    return " and ".join(CLAUSE[k].format(v=world.facts[animal][k]) for k in kinds) + ", so it is the"


def task_examples(world: World, task: str) -> dict[str, list[tuple[str, str]]]:
    """The (prompt, answer) pairs of a task's train and test splits.

    classify / relabel: one-fact and two-fact descriptions (both orders); train uses the
    animal's seen kinds only, test its other two kinds only.
    qa: one question per fact; train asks the seen kinds, test the other two.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; the tasks are {', '.join(TASKS)}")
    swap = {"cat": "dog", "dog": "cat"} if task == "relabel" else {}
    out = {"train": [], "test": []}
    for a in world.animals:
        for split, kinds in (("train", world.seen[a]), ("test", tuple(k for k in KINDS if k not in world.seen[a]))):
            if task == "qa":
                out[split] += [(QUESTION[k].format(a=a), " " + FORWARD[k].format(a=a, v=world.facts[a][k])) for k in kinds]
            else:
                k1, k2 = kinds
                for ks in ((k1,), (k2,), (k1, k2), (k2, k1)):
                    out[split].append((describe(world, a, ks), f" {swap.get(a, a)}."))
    return out


def make_task(task: str = "classify", world_seed: int = 0) -> Dataset:
    """A downstream task with train and test splits that share no prompt."""
    tok, world = CharTokenizer(), make_world(world_seed)
    ex = task_examples(world, task)
    return Dataset(task, encode_examples("train", ex["train"], tok), encode_examples("test", ex["test"], tok), tok, world)


def make_fact_probe(world_seed: int = 0) -> Split:
    """Every fact asked both ways in the corpus's own words, to check what a base knows:
    ("the cat eats", " fish.") and ("the animal that eats fish is the", " cat.")."""
    tok, world = CharTokenizer(), make_world(world_seed)
    ex = []
    for a, facts in world.facts.items():
        for kind, v in facts.items():
            fwd = FORWARD[kind].format(a=a, v=v)
            ex.append((fwd[: -len(v) - 2], " " + v + "."))
            ex.append((BACKWARD[kind].format(a=a, v=v)[: -len(a) - 2], f" {a}."))
    return encode_examples("facts", ex, tok)
