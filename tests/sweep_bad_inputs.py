"""Count how this checkout meets the bad inputs of tests/test_bad_inputs.py (issue 12's sweep).

    python tests/sweep_bad_inputs.py            # one line per case, then the counts

Each case ends one of four ways:
    clear    the exception the case expects, with a message that names the argument
             (command line: exit status 2, no traceback)
    obscure  another exception, a traceback, or a message that does not say what was wrong
    silent   no error at all: the bad input was accepted
    absent   the feature the case exercises does not exist in this checkout
Run it on an older checkout by copying this file, test_bad_inputs.py and docs/examples/ into it.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_bad_inputs import CASES, NO_CUDA, CliError  # noqa: E402

ABSENT = re.compile(r"has no attribute '(Dataset|get_peft_model|PeftModel|LoraConfig|PromptTuningConfig|FreezeConfig|sweep)'"
                    r"|No module named 'minituner.device'|unrecognized arguments|invalid choice: '(finetune|generate)'"
                    r"|unexpected keyword argument '(patience|n_train)'")


def outcome(case) -> tuple[str, str]:
    try:
        case.run()
    except Exception as e:  # noqa: BLE001 - classifying every failure is the point
        message = str(e)
        if ABSENT.search(message):
            return "absent", message
        ok = isinstance(e, case.error) and all(re.search(p, message) for p in case.names)
        if isinstance(e, CliError) and "Traceback" in message:
            ok = False
        return ("clear" if ok else "obscure"), f"{type(e).__name__}: {message}"
    return "silent", "accepted"


def main() -> int:
    counts = Counter()
    for case in CASES:
        if case.needs_no_cuda and not NO_CUDA:
            continue
        kind, message = outcome(case)
        counts[kind] += 1
        print(f"{kind:8s} {case.id:45s} {' '.join(message.split())[:110]}")
    print(f"\n{sum(counts.values())} cases: " + ", ".join(f"{counts[k]} {k}" for k in ("clear", "obscure", "silent", "absent")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
