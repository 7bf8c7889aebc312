"""transformers and peft, imported when a test first uses one (pytest.importorskip: skipped where not installed).

Importing them takes seconds, and every pytest-xdist worker imports every test file to collect it; so a
test file names them with `peft = optional("peft")` at its top, and only the worker that runs its tests
pays. Those files mark their tests `pytestmark = HUGGING_FACE` (pytest runs with --dist loadgroup), so
one worker runs them all and the other workers never import either.
"""

import pytest

HUGGING_FACE = pytest.mark.xdist_group("hugging-face")


class optional:
    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        if attr.startswith("__"):  # what pytest asks each name of a module it collects (__test__): no import
            raise AttributeError(attr)
        return getattr(pytest.importorskip(self._name), attr)
