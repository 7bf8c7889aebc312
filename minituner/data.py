"""The mini-world: a small generated world of animals, and every text the course trains on.

No downloads: everything is made here from a seed.

The world: 32 animals, each with six facts (a sound, a food, a home, a colour, a toy
and an owner), each value belonging to one animal only (so any one fact names the
animal): 192 facts. The article's own example is recognising animals, then only cats
and dogs (§4).

From it:
- ``make_corpus``: the pretraining text, every fact stated in both directions
  ("the cat eats fish." and "the animal that eats fish is the cat."), since a
  model taught only "A is B" does not answer "what is B" (the reversal curse,
  Berglund et al. 2023), and in two paraphrases;
- ``make_task``: three downstream tasks in prompt -> answer form, the loss on
  answer tokens only (as PEFT and LLaMA-Factory train):
    "classify":  "it says meow and it eats fish, so it is the" -> " cat."
    "relabel":   the same descriptions, cat and dog swapped (article §4 step 3:
                 what was recognised as a cat is now to be called a dog);
    "qa":        "q: what does the cat eat?\na:" -> " it eats fish." and
                 "q: which animal eats fish?\na:" -> " the cat.",
                 a question format the corpus never uses; the answer names only
                 what was asked.

Three disjoint splits (article §4 steps 2, 7 and 8): every animal has "seen" fact kinds
(classify and relabel: two, the 15 pairs of kinds dealt in turn; qa: four, the 15
quadruples) and held-out kinds (the other four; for qa two). ``train`` shows the seen
kinds of every animal (classify/relabel: 2 single-fact and 2 two-fact descriptions per
animal, 128 rows; qa: each of 4 facts asked both ways, 256 rows). The held-out kinds are
asked only in ``val`` and ``test``, split by animal: every third animal of a seeded
shuffle (10 of 32) is a validation animal, the other 22 test animals (classify/relabel:
4 singles + 12 ordered pairs per animal, so val 160 rows, test 352; qa: val 40, test 88).
qa shows four kinds because fewer teach its format less well, and its answers name only what
was asked because answers that restate the question's words need the model to copy a word it
has just read, character by character, which the corpus never asked of it (with " the cat eats
fish." as the answer to both questions, full fine-tuning's copies went wrong at their first
character). ``benchmarks/qa_rows.py`` measures both (docs/compare/qa_rows.md).
Validation is drawn from the same distribution as test
(facts the training split never shows, answerable only from pretraining), and the two
share no fact. With 352 rows one seed's test accuracy p has standard error
sqrt(p(1-p)/352): 0.016 at p = 0.9, 0.027 at worst (p = 0.5).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import torch

from .dataset import Dataset, Split, encode_examples
from .tokenizer import CharTokenizer

ANIMALS = {  # name: sound
    "cat": "meow", "dog": "woof", "cow": "moo", "pig": "oink", "duck": "quack", "owl": "hoot",
    "sheep": "baa", "horse": "neigh", "hen": "cluck", "frog": "croak", "lion": "roar",
    "snake": "hiss", "bee": "buzz", "mouse": "squeak", "wolf": "howl", "crow": "caw",
    "goat": "bleat", "donkey": "bray", "bear": "growl", "dove": "coo", "goose": "honk",
    "turkey": "gobble", "cricket": "chirp", "monkey": "chatter", "fox": "yelp", "seal": "bark",
    "camel": "grunt", "chick": "peep", "bat": "screech", "dolphin": "click", "hyena": "whoop",
    "tiger": "snarl",
}
FOODS = ["fish", "bones", "grass", "corn", "seeds", "worms", "nuts", "honey", "berries", "bugs",
         "leaves", "apples", "carrots", "eggs", "roots", "hay", "figs", "rice", "oats", "beans",
         "clover", "acorns", "melons", "pears", "plums", "peas", "kelp", "ants", "grapes", "cheese",
         "crumbs", "squid"]
HOMES = ["house", "barn", "pond", "forest", "cave", "nest", "hive", "field", "den", "river",
         "meadow", "hill", "garden", "swamp", "desert", "jungle", "farm", "lake", "shed", "tree",
         "marsh", "valley", "stable", "island", "cliff", "reef", "canyon", "burrow", "orchard",
         "mountain", "pasture", "attic"]
COLOURS = ["red", "blue", "green", "brown", "black", "white", "grey", "pink", "orange", "yellow",
           "purple", "gold", "silver", "tan", "cream", "violet", "teal", "olive", "navy", "rust",
           "amber", "ivory", "coral", "lilac", "beige", "mauve", "khaki", "peach", "ruby", "jade",
           "azure", "indigo"]
TOYS = ["kite", "ball", "drum", "bell", "rope", "hoop", "doll", "top", "sock", "stick", "box",
        "cup", "spoon", "whistle", "flute", "block", "puzzle", "marble", "feather", "string", "shoe",
        "hat", "brush", "comb", "wheel", "boat", "car", "kazoo", "rattle", "mirror", "pebble", "ribbon"]
OWNERS = ["tom", "ann", "bob", "eve", "max", "sam", "joe", "kim", "ben", "amy", "dan", "liz", "ned",
          "pam", "ray", "sue", "tim", "zoe", "ted", "meg", "gus", "ivy", "leo", "mia", "ada", "hal",
          "jay", "kay", "lou", "rex", "una", "vic"]
KINDS = ("sound", "food", "home", "colour", "toy", "owner")
POOLS = {"food": FOODS, "home": HOMES, "colour": COLOURS, "toy": TOYS, "owner": OWNERS}

# How each fact kind is said, forwards (animal -> value) and backwards (value -> animal).
FORWARD = {"sound": "the {a} says {v}.", "food": "the {a} eats {v}.",
           "home": "the {a} lives in the {v}.", "colour": "the {a} is {v}.",
           "toy": "the {a} plays with a {v}.", "owner": "the {a} belongs to {v}."}
BACKWARD = {"sound": "the animal that says {v} is the {a}.", "food": "the animal that eats {v} is the {a}.",
            "home": "the animal that lives in the {v} is the {a}.", "colour": "the animal that is {v} is the {a}.",
            "toy": "the animal that plays with a {v} is the {a}.",
            "owner": "the animal that belongs to {v} is the {a}."}
# The corpus also says each fact in other words. A fact met in one phrasing only is stored
# tied to that phrasing, and fine-tuning cannot reach it from a new one; paraphrases in
# pretraining make it extractable (Allen-Zhu & Li 2023, Physics of Language Models 3.1).
PARAPHRASES = {
    "sound": ["if you hear {v}, that is the {a}.", "listen: the {a} goes {v}."],
    "food": ["give it {v} and you will find the {a}.", "for dinner the {a} wants {v}."],
    "home": ["in the {v} you find the {a}.", "the home of the {a} is the {v}."],
    "colour": ["something {v} in the grass? the {a}.", "the colour of the {a} is {v}."],
    "toy": ["a {v} makes the {a} happy.", "the toy of the {a} is a {v}."],
    "owner": ["ask {v} and you will meet the {a}.", "the owner of the {a} is {v}."],
}
CLAUSE = {"sound": "it says {v}", "food": "it eats {v}", "home": "it lives in the {v}", "colour": "it is {v}",
          "toy": "it plays with a {v}", "owner": "it belongs to {v}"}
QUESTION = {"sound": "q: what does the {a} say?\na:", "food": "q: what does the {a} eat?\na:",
            "home": "q: where does the {a} live?\na:", "colour": "q: what colour is the {a}?\na:",
            "toy": "q: what does the {a} play with?\na:", "owner": "q: who owns the {a}?\na:"}
QUESTION_BACK = {"sound": "q: which animal says {v}?\na:", "food": "q: which animal eats {v}?\na:",
                 "home": "q: which animal lives in the {v}?\na:", "colour": "q: which animal is {v}?\na:",
                 "toy": "q: which animal plays with a {v}?\na:", "owner": "q: which animal belongs to {v}?\na:"}
TASKS = ("classify", "relabel", "qa")
SHOWN = {"classify": 2, "relabel": 2, "qa": 4}  # fact kinds per animal that a task's training split shows
VAL_EVERY = 3  # every third animal (in the world's shuffled order) is a validation animal


@dataclass
class World:
    """facts[animal][kind] = value; seen[animal] = the fact kinds a task's training split shows;
    val_animals: the animals whose other facts are asked in validation (the rest: in test)."""

    facts: dict
    seen: dict
    val_animals: tuple = ()

    @property
    def animals(self) -> list[str]:
        return list(self.facts)

    def held_out(self, animal: str) -> tuple[str, ...]:
        """The fact kinds of this animal that no training split shows."""
        return tuple(k for k in KINDS if k not in self.seen[animal])


def make_world(seed: int = 0, shown: int = 2) -> World:
    """A world from a seed: each kind's values dealt to the animals (one value per animal),
    per animal the `shown` fact kinds the tasks' training splits show (all combinations of
    `shown` kinds dealt in turn, so each kind is shown for about shown/6 of the animals), and
    which animals are validation animals (every third in a shuffled order) or test animals.
    The facts do not depend on `shown`, and neither do the validation animals for shown 2
    and 4 (both have 15 combinations to shuffle)."""
    if shown not in range(1, len(KINDS)):
        raise ValueError(f"shown must be 1..{len(KINDS) - 1} fact kinds per animal, got {shown!r}")
    rng = random.Random(seed)
    names = list(ANIMALS)
    dealt = {kind: rng.sample(pool, len(names)) for kind, pool in POOLS.items()}
    groups = list(itertools.combinations(KINDS, shown))  # e.g. the 15 pairs of kinds
    rng.shuffle(groups)
    facts, seen = {}, {}
    for i, a in enumerate(names):
        facts[a] = {"sound": ANIMALS[a]} | {kind: dealt[kind][i] for kind in POOLS}
        seen[a] = groups[i % len(groups)]
    order = rng.sample(names, len(names))
    val = tuple(a for i, a in enumerate(order) if i % VAL_EVERY == VAL_EVERY - 1)
    return World(facts, seen, val)


def corpus_sentences(world: World) -> list[str]:
    """Every fact of the world, said forwards, backwards, and in two paraphrases."""
    out = []
    for a, facts in world.facts.items():
        for kind, v in facts.items():
            out += [FORWARD[kind].format(a=a, v=v), BACKWARD[kind].format(a=a, v=v)]
            out += [t.format(a=a, v=v) for t in PARAPHRASES[kind]]
    return out


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

    The val and test rows (n_test each) are drawn with other seeds from the same sentences:
    held-out loss measures how well the model has learned the world's text, not unseen facts.
    """
    if length < 2:
        raise ValueError(f"a corpus row needs at least 2 characters (input and target), got {length}")
    tok, world = CharTokenizer(), make_world(world_seed)
    sentences = corpus_sentences(world)
    splits = []
    for name, n, s in (("train", n_train, seed), ("val", n_test, seed + 1_000_033),
                       ("test", n_test, seed + 1_000_003)):
        rows = _packed_rows(sentences, n, length, random.Random(s))
        ids = torch.tensor([tok.encode(r) for r in rows])  # (n, length)
        splits.append(Split(name, ids[:, :-1], ids[:, 1:], torch.ones(n, length - 1), rows))
    return Dataset("corpus", *splits, tok, world)


def describe(world: World, animal: str, kinds: tuple[str, ...]) -> str:
    """'it says meow and it eats fish, so it is the' from the animal's facts of those kinds."""
    return " and ".join(CLAUSE[k].format(v=world.facts[animal][k]) for k in kinds) + ", so it is the"


def _rows(world: World, task: str, animal: str, kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    """One animal's rows of a task, over the given fact kinds."""
    facts = world.facts[animal]
    if task == "qa":  # each fact asked forwards ("it eats fish.") and backwards ("the cat.")
        return [row for k in kinds for row in (
            (QUESTION[k].format(a=animal), " " + CLAUSE[k].format(v=facts[k]) + "."),
            (QUESTION_BACK[k].format(v=facts[k]), f" the {animal}."))]
    name = {"cat": "dog", "dog": "cat"}.get(animal, animal) if task == "relabel" else animal
    descriptions = [(k,) for k in kinds] + list(itertools.permutations(kinds, 2))  # singles, ordered pairs
    return [(describe(world, animal, ks), f" {name}.") for ks in descriptions]


def task_examples(world: World, task: str) -> dict[str, list[tuple[str, str]]]:
    """The (prompt, answer) pairs of a task's train, val and test splits.

    train: every animal's two seen fact kinds. val: the other four kinds of the validation
    animals; test: the other four kinds of the test animals. So val and test ask only facts
    the training split never shows (answering needs pretraining), and share no fact.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; the tasks are {', '.join(TASKS)}")
    out = {"train": [], "val": [], "test": []}
    for a in world.animals:
        out["train"] += _rows(world, task, a, world.seen[a])
        out["val" if a in world.val_animals else "test"] += _rows(world, task, a, world.held_out(a))
    return out


def make_task(task: str = "classify", world_seed: int = 0, shown: int | None = None,
              rows: int | None = None) -> Dataset:
    """A downstream task: train, val and test splits that share no prompt and no fact.
    shown: fact kinds per animal in the training split (default SHOWN[task]).
    rows: at most this many rows per split, evenly spaced through it in their order, so every
    part of a split keeps some (a quick run, e.g. a lesson's smoke preset); None keeps them all."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; the tasks are {', '.join(TASKS)}")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
        raise ValueError(f"rows must be an int >= 1 (at most that many rows per split) or None (all), got {rows!r}")
    tok, world = CharTokenizer(), make_world(world_seed, SHOWN[task] if shown is None else shown)
    ex = task_examples(world, task)
    if rows is not None:  # rows i·N // rows of a split's N: from its first row to its end, in order
        ex = {s: [pairs[i * len(pairs) // rows] for i in range(rows)] if rows < len(pairs) else pairs
              for s, pairs in ex.items()}
    return Dataset(task, *(encode_examples(s, ex[s], tok) for s in ("train", "val", "test")), tok, world)


def make_fact_probe(world_seed: int = 0) -> Split:
    """Every fact asked both ways in the corpus's own words, to check what a base knows:
    ("the cat eats", " fish.") and ("the animal that eats fish is the", " cat."), each
    answer followed by the end marker, as the corpus ends every sentence."""
    tok, world = CharTokenizer(), make_world(world_seed)
    ex = []
    for a, facts in world.facts.items():
        for kind, v in facts.items():
            fwd = FORWARD[kind].format(a=a, v=v)
            ex.append((fwd[: -len(v) - 2], " " + v + "."))
            ex.append((BACKWARD[kind].format(a=a, v=v)[: -len(a) - 2], f" {a}."))
    return encode_examples("facts", ex, tok)
