"""The live sliders in a real browser: a notebook served by Voila, driven by headless Chromium.

The test moves the learning-rate slider with the keyboard, as a person would, and times each
move from the key press to the redrawn plot in the page (a MutationObserver's timestamp), and
reads the kernel's training time for the move from the status line. It saves a screenshot.

Set `JAXGD_BROWSER_REPORT=DIR` to also write `DIR/sliders.png` and `DIR/latency.json` (the
README's screenshot and figures come from `JAXGD_BROWSER_REPORT=notebooks python -m pytest -s
tests/test_browser.py`). Outside CI the test skips when Chromium is missing; in CI (env `CI`
set) it fails instead, so it can never be skipped silently there.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_how_a_neural_net_works.ipynb"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MOVES = 30  # timed key presses on the learning-rate slider (0.05 decades): 0.01 -> 0.0018 -> 0.01
GOAL_REDRAW_MS, GOAL_TRAIN_MS = 150.0, 20.0  # p95 goals of the issue, on a 2-core CPU
# What fails the test: 3x the goals. A compile per move (~1 s) or a matplotlib PNG per move
# (~250 ms) breaks them; a busy shared machine (twice the goal, measured) does not.
LIMIT_REDRAW_MS, LIMIT_TRAIN_MS = 3 * GOAL_REDRAW_MS, 3 * GOAL_TRAIN_MS

# Stamps every key press and every change of the live plot with the page's clock.
INSTRUMENT = """
const plot = document.querySelector('.jaxgd-live-quadratic .jaxgd-plot');
window.__keys = []; window.__redraws = [];
document.addEventListener('keydown', () => window.__keys.push(performance.now()), true);
new MutationObserver(() => window.__redraws.push(performance.now()))
    .observe(plot, {childList: true, subtree: true, characterData: true});
"""


def _need_browser():
    missing = [p for p in (CHROMIUM, DRIVER) if not os.access(p, os.X_OK)]
    if missing:
        message = (f"headless Chromium is needed: {missing} not found; "
                   "apt-get install -y chromium chromium-driver (.ci/run does)")  # fmt: skip
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def voila_page(tmp_path):
    """The notebook served by Voila on a local port; yields its URL."""
    _need_browser()
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    log = open(tmp_path / "voila.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "voila", str(NOTEBOOK), "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1", "--show_tracebacks=True"],
        cwd=NOTEBOOK.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "api/status", timeout=2)  # the server is up
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _chromium(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1200,900"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))


def _press(driver, handle, key, count_before: int, timeout: float = 10.0) -> None:
    """Presses `key` on a slider handle and waits until the plot has been redrawn."""
    handle.send_keys(key)
    deadline = time.monotonic() + timeout
    while driver.execute_script("return window.__redraws.length") <= count_before:
        if time.monotonic() > deadline:
            raise AssertionError(f"the plot was not redrawn within {timeout} s of a slider move")
        time.sleep(0.005)


def test_live_sliders_retrain_and_redraw_in_chromium(voila_page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chromium(tmp_path / "chromium-profile")
    try:
        driver.get(voila_page)  # Voila runs the whole notebook, then shows its outputs
        live = ".jaxgd-live-quadratic"
        WebDriverWait(driver, 240).until(
            seen.presence_of_element_located((By.CSS_SELECTOR, f"{live} .jaxgd-plot svg"))
        )
        box = driver.find_element(By.CSS_SELECTOR, live)
        driver.execute_script("arguments[0].scrollIntoView()", box)
        plot = lambda: box.find_element(By.CSS_SELECTOR, ".jaxgd-plot").get_attribute("innerHTML")
        status = lambda: box.find_element(By.CSS_SELECTOR, ".jaxgd-status").text
        handle = box.find_elements(By.CSS_SELECTOR, ".noUi-handle")[0]  # the learning rate
        driver.execute_script(INSTRUMENT)
        first, latencies, train_ms = plot(), [], []
        for move in range(MOVES):
            key = Keys.ARROW_LEFT if move < MOVES // 2 else Keys.ARROW_RIGHT
            keys, before = (
                driver.execute_script(f"return window.__{n}.length") for n in ("keys", "redraws")
            )
            _press(driver, handle, key, before)
            pressed = driver.execute_script(f"return window.__keys[{keys}]")
            redrawn = driver.execute_script(f"return window.__redraws[{before}]")
            latencies.append(redrawn - pressed)
            time.sleep(0.05)  # let the status line arrive too
            train_ms.append(float(re.search(r"trained in ([\d.]+) ms", status()).group(1)))
            if move == MOVES // 2 - 1:
                smallest = plot()
        assert smallest != first, "moving the learning rate must change the plot"
        assert plot() == first, "back at the first learning rate, the same run is drawn again"
        shot = tmp_path / "sliders.png"
        box.screenshot(str(shot))
        for _ in range(40):  # on towards lr 1 (the slider's end): the run diverges, and says so
            if "diverged" in plot():
                break
            count = driver.execute_script("return window.__redraws.length")
            _press(driver, handle, Keys.ARROW_RIGHT, count)
            time.sleep(0.05)
        assert re.search(r"diverged at epoch \d+", plot()), status()
        assert "diverged at epoch" in status()
    finally:
        driver.quit()
    report = {
        "moves": MOVES,
        "redraw_ms": {
            "p50": float(np.percentile(latencies, 50)),
            "p95": float(np.percentile(latencies, 95)),
        },
        "train_ms": {
            "p50": float(np.percentile(train_ms, 50)),
            "p95": float(np.percentile(train_ms, 95)),
        },
    }
    report["goals_met"] = {
        "redraw": report["redraw_ms"]["p95"] <= GOAL_REDRAW_MS,
        "train": report["train_ms"]["p95"] <= GOAL_TRAIN_MS,
    }
    print(json.dumps(report, indent=2))
    if os.environ.get("JAXGD_BROWSER_REPORT"):
        out = Path(os.environ["JAXGD_BROWSER_REPORT"])
        shutil.copy(shot, out / "sliders.png")
        (out / "latency.json").write_text(json.dumps(report, indent=2) + "\n")
    assert report["train_ms"]["p95"] <= LIMIT_TRAIN_MS, report
    assert report["redraw_ms"]["p95"] <= LIMIT_REDRAW_MS, report
