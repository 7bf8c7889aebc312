"""The board in a browser, as a person uses it: load the page, choose LoRA on classify at the smoke
preset, start, see the curve update (and still going after a reload), stop, see the run listed, run a
short one to its end, overlay the two, ask its adapter a question.

The browser is the system's headless Chromium (Debian's chromium and chromium-driver, which .ci/run
installs), driven through selenium; nothing downloads a browser. At each stage a screenshot of the
page, in English and in Chinese, goes to the folder in $MINITUNER_SCREENSHOTS (docs/board/ makes the
pictures of docs/board.md), else to a temporary folder.
"""

import base64
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.xdist_group("board"),
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no Chromium here: install Debian's chromium "
                                 "and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)")]
pytest.importorskip("flask", reason='the board extra is not installed (pip install -e ".[board]")')
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra has it)")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

WAIT = 180  # seconds a stage may take at most (a training run on a busy CPU)


@pytest.fixture
def board(tmp_path):
    """`minituner board` on a free port, its runs in tmp_path; (its address, its runs folder)."""
    runs = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "minituner.cli", "board", "--port", "0", "--runs", str(runs)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, line + process.stdout.read()
        yield url.group(0), runs
    finally:
        process.terminate()
        process.wait()


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1000,2400",
                 f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    yield driver
    driver.quit()


def test_a_person_trains_watches_stops_compares_and_asks(board, browser, tmp_path):
    url, runs = board
    shots = Path(os.environ.get("MINITUNER_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    d = browser
    el = lambda id: d.find_element(By.ID, id)  # noqa: E731
    until = lambda test: WebDriverWait(d, WAIT).until(lambda _: test())  # noqa: E731

    def shot(name: str, *sections: str) -> None:
        """The page from the first section's top to the last one's bottom, in English, then in Chinese."""
        for lang in ("en", "zh"):
            top, bottom = el(sections[0]).rect, el(sections[-1]).rect
            clip = {"x": 0, "y": top["y"], "width": 1000, "height": bottom["y"] + bottom["height"] - top["y"], "scale": 1}
            png = d.execute_cdp_cmd("Page.captureScreenshot", {"clip": clip, "captureBeyondViewport": True})["data"]
            (shots / f"{name}-{lang}.png").write_bytes(base64.b64decode(png))
            el("lang").click()
        assert el("start").text == "Start"  # back in English

    def number(id: str, attribute: str) -> int:
        return int(el(id).get_attribute(attribute) or 0)

    # 1. load: the page asks the server for the registry's methods and checks the default form
    d.get(url)
    until(lambda: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "yes")
    until(lambda: el("command").text.startswith("minituner finetune"))
    assert [o.get_attribute("value") for o in Select(el("method")).options][:1] == ["full"]
    loaded = d.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert loaded and all(u.startswith(url + "/") for u in loaded)  # nothing from outside the machine
    shot("1-loaded", "data-section", "method-section")

    # 2. LoRA on classify at the smoke preset, rank 4: the command and the trainable count follow
    Select(el("task")).select_by_value("classify")
    Select(el("method")).select_by_value("lora")
    Select(el("preset")).select_by_value("smoke")
    el("opt-r").clear()
    el("opt-r").send_keys("4\t")
    until(lambda: el("command").text.endswith("--steps 30 --eval-every 5 --r 4"))
    el("opt-steps").clear()
    el("opt-steps").send_keys("3000\t")  # long enough to be stopped on a fast machine
    until(lambda: el("command").text.endswith("--steps 3000 --eval-every 5 --r 4"))
    until(lambda: el("trainable").text.startswith("4,096 / "))
    shot("2-lora-smoke", "method-section", "command-section")

    # 3. start: the progress bar and the curve move, and go on after a reload
    el("start").click()
    until(lambda: number("curve", "data-evals") >= 1)
    seen = number("curve", "data-points")
    until(lambda: number("curve", "data-points") > seen)
    assert el("run-status").text == "running" and el("progress-text").text.startswith("step ")
    first = el("run-id").text
    d.refresh()
    until(lambda: el("run-id").text == first and el("run-status").text == "running")
    until(lambda: number("curve", "data-points") > seen)
    shot("3-running", "command-section", "run-section")

    # 4. stop: the run is listed, stopped
    el("stop").click()
    until(lambda: el("run-status").text == "stopped")
    until(lambda: f"{first} stopped" in el("runs").text)
    shot("4-stopped", "run-section", "runs-section")

    # 5. a short run to its end (the reload reset the form: LoRA at its defaults): its test score, the two overlaid
    for name, value in (("steps", "6"), ("eval_every", "3")):
        el(f"opt-{name}").clear()
        el(f"opt-{name}").send_keys(value + "\t")
    until(lambda: el("command").text == "minituner " + shlex.join(
        ["finetune", "--method", "lora", "--data", str(runs / "data" / "classify.jsonl"),
         "--out", str(runs / "002-lora" / "adapter"), "--steps", "6", "--eval-every", "3"]))
    el("start").click()
    until(lambda: el("run-id").text != first and el("run-status").text == "finished")
    second = el("run-id").text
    assert el("test").text.startswith("accuracy ")
    until(lambda: f"{second} finished" in el("runs").text)
    for box in d.find_elements(By.CSS_SELECTOR, "#runs input[type=checkbox]"):
        box.click()
    until(lambda: number("overlay", "data-runs") == 2)
    shot("5-finished-overlaid", "run-section", "runs-section")

    # 6. ask the finished run's adapter (the adapter list offers finished runs only)
    assert [o.get_attribute("value") for o in Select(el("adapter")).options] == ["", second]
    Select(el("adapter")).select_by_value(second)
    el("prompt").clear()
    el("prompt").send_keys("it says meow, so it is the")
    el("ask").click()
    until(lambda: el("answer").text.startswith("it says meow, so it is the "))
    shot("6-answer", "chat-section")
    assert sorted(p.name for p in runs.iterdir()) == sorted(["data", first, second])
