"""The exercises (issue 41): every solution passes its checker, every untouched skeleton fails it with a
message naming NotImplementedError, and a typical wrong answer fails with a message that points at it."""

import io
from pathlib import Path

import pytest

from minituner.cli import main
from minituner.exercises import EXERCISES, check

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "exercises"


def graded(name, file, lang="en"):
    out = io.StringIO()
    return check(name, file, lang, out=out), out.getvalue()


def test_every_exercise_has_a_skeleton_and_a_solution_and_every_lesson_has_an_exercise():
    assert sorted(p.stem for p in EX.glob("*.py")) == sorted(EXERCISES)
    assert sorted(p.stem for p in (EX / "solutions").glob("*.py")) == sorted(EXERCISES)
    lessons = {p.name[:2] for p in (ROOT / "lessons").glob("[0-9][0-9]_*.py")}
    assert lessons <= {name[:2] for name in EXERCISES}
    for p in (ROOT / "lessons").glob("[0-9][0-9]_*.py"):
        names = [n for n in EXERCISES if n[:2] == p.name[:2]]
        assert any(f"minituner check {n}" in p.read_text() for n in names), f"{p.name} does not point to its exercise"


@pytest.mark.parametrize("name", EXERCISES)
def test_the_solution_passes(name):
    rc, text = graded(name, EX / "solutions" / f"{name}.py")
    assert rc == 0, text
    assert "FAIL" not in text


@pytest.mark.parametrize("name", EXERCISES)
def test_the_untouched_skeleton_fails_naming_what_to_write(name):
    rc, text = graded(name, EX / f"{name}.py")
    assert rc == 1
    for task in EXERCISES[name]:
        assert f"{task.name} raises NotImplementedError" in text, text


WRONG = {  # (exercise, a wrong line replacing the solution's, the words the message must hold)
    "transposed W in linear": ("00_linear", "return x @ W.T + b  # (..., out)", "return x @ W + b",
                               "W needs its transpose"),
    "the answer mask off by one": ("02_answer_mask", "[0.0] * (n_prompt - 1) + [1.0] * n_answer",
                                   "[0.0] * n_prompt + [1.0] * (n_answer - 1)", "off by one"),
    "α instead of α/r in LoRA's forward": ("06_lora", "b + (alpha / r) * (x @ A.T)", "b + alpha * (x @ A.T)",
                                           "α instead of α/r"),
    "α instead of α/r in LoRA's merge": ("06_lora", "W + (alpha / r) * B @ A", "W + alpha * B @ A", "α instead of α/r"),
    "transposed W in LoRA": ("06_lora", "x @ W.T + b + (alpha", "x @ W + b + (alpha", "W not transposed"),
}


@pytest.mark.parametrize("case", WRONG)
def test_a_typical_wrong_answer_fails_with_a_message_that_points_at_it(case, tmp_path):
    name, right, wrong, words = WRONG[case]
    source = (EX / "solutions" / f"{name}.py").read_text()
    assert right in source
    path = tmp_path / f"{name}.py"
    path.write_text(source.replace(right, wrong))
    rc, text = graded(name, path)
    assert rc == 1 and "FAIL" in text and "expected" in text and "actual" in text
    assert words in text, text


def test_a_shape_error_shows_the_shapes_and_chinese_is_there(tmp_path):
    path = tmp_path / "04.py"
    path.write_text((EX / "solutions" / "04_soft_prompt.py").read_text().replace("dim=1)  # (B, k + T, C)",
                                                                                 "dim=2)"))
    rc, text = graded("04_soft_prompt", path)
    assert rc == 1 and "inputs: tensor" in text
    rc, text = graded("06_lora", EX / "06_lora.py", lang="zh")
    assert rc == 1 and "还没写" in text


def test_the_command_exits_0_1_2(capsys):
    assert main(["check", "08_mean_std", str(EX / "solutions" / "08_mean_std.py")]) == 0
    assert main(["check", "08_mean_std", str(EX / "08_mean_std.py")]) == 1
    assert main(["check", "no_such"]) == 2
    assert "06_lora" in capsys.readouterr().err
    assert main(["check", "08_mean_std", str(EX / "missing.py")]) == 2


def test_import_minituner_does_not_import_the_exercises():
    import subprocess
    import sys

    code = "import sys, minituner; print(any(m.startswith(('exercises', 'minituner.exercises')) for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout.strip() == "False"
