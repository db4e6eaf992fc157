"""The page at ``/`` in a real browser: headless Chromium driven through Selenium.

A live server on the demo run exported with ``--attention``; the test types a caption, sets the
seed and the count, clicks Generate, waits for every stage's image to decode, clicks word chips
and checks the overlays against the server's own reply, shows a history entry again, and submits
an empty caption to see the server's one-line error. It skips, saying why, only where Debian's
``chromium`` and ``chromium-driver`` are not installed (``make browser-deps`` installs them as
root). ``T2I_WEB_SCREENSHOT=PATH`` also saves the screenshot there, and ``T2I_WEB_DEPLOY=DIR``
serves another ``--attention`` export of the demo recipe instead (docs/img/serve_page.png is
this test on ``make demo``'s run exported with ``--attention``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from serve_helpers import LiveServer

from t2i_stages.serve import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 30

selenium = pytest.importorskip(
    "selenium", reason="selenium is not installed (pip install selenium)"
)
if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(
        f"no Chromium here ({CHROMIUM} and {CHROMEDRIVER} are needed: "
        "`make browser-deps` as root, or apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service as DriverService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CAPTION = "a red circle zzqq"


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,960"):
        options.add_argument(arg)
    # the driver's path is given, so Selenium Manager never looks for (or downloads) one
    driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(request):
    folder = os.environ.get("T2I_WEB_DEPLOY") or request.getfixturevalue("demo_deploy_attention")
    app = create_app(folder, provider="cpu", threads=1, max_delay_ms=1)
    with LiveServer(app) as live:
        yield live


def _wait(driver, condition, what: str):
    return WebDriverWait(driver, WAIT_S).until(lambda d: condition(d), message=what)


def _images_decoded(driver) -> list[int] | bool:
    widths = driver.execute_script(
        "return [...document.querySelectorAll('#result img.stage-image')]"
        ".map(i => i.complete ? i.naturalWidth : -1)"
    )
    return widths if widths and all(w > 0 for w in widths) else False


def _overlays(driver) -> list[dict]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#result img.overlay')].map(i => ({"
        "src: i.getAttribute('src'), shown: !i.hidden && getComputedStyle(i).display !== 'none',"
        "width: i.complete ? i.naturalWidth : -1,"
        "stage: i.closest('figure').dataset.stage, sample: i.closest('.sample').dataset.sample}))"
    )


def _generate(driver, caption: str, seed: int | None, count: int) -> None:
    for field, value in (("caption", caption), ("seed", seed), ("count", count)):
        box = driver.find_element(By.ID, field)
        box.clear()
        if value is not None:
            box.send_keys(str(value))
    driver.find_element(By.ID, "generate").click()


def test_the_page_generates_shows_stages_attention_history_and_errors(browser, server, tmp_path):
    driver = browser
    driver.get(server.url + "/")
    _wait(driver, lambda d: "3 stages" in d.find_element(By.ID, "model-info").text, "model card")
    link = driver.find_element(By.ID, "model-link")
    assert link.get_attribute("href") == server.url + "/v1/model"
    # what the server answers for the same request, to check the page against
    want = server.generate(
        captions=[CAPTION], n=2, seed=7, stages="all", attention=True, format="json"
    ).json()

    _generate(driver, CAPTION, 7, 2)
    widths = _wait(driver, _images_decoded, "the stage images to decode")
    assert widths == [8, 16, 32, 8, 16, 32]  # 2 samples, every stage, low to high
    assert driver.find_element(By.ID, "error").is_displayed() is False
    sources = driver.execute_script(
        "return [...document.querySelectorAll('#result img.stage-image')].map(i => i.src)"
    )
    assert sources == [
        "data:image/png;base64," + im["png"]
        for s in want["results"][0]["samples"]
        for im in s["images"]
    ]

    chips = driver.find_elements(By.CSS_SELECTOR, "#chips .chip")
    assert [c.text.removesuffix(" ?") for c in chips] == ["a", "red", "circle", "zzqq"]
    assert ["oov" in c.get_attribute("class") for c in chips] == [False, False, False, True]
    before = _overlays(driver)
    assert len(before) == 4 and not any(o["shown"] for o in before)  # stages 1, 2 x 2 samples

    def maps_of(token: int) -> list[str]:
        return [
            "data:image/png;base64," + m["words"][token]["png"]
            for s in want["results"][0]["samples"]
            for m in s["attention"]
        ]

    chips[1].click()  # "red"
    red = _wait(
        driver, lambda d: all(o["width"] > 0 for o in _overlays(d)) and _overlays(d), "the overlays"
    )
    assert all(o["shown"] for o in red)
    assert [(o["sample"], o["stage"]) for o in red] == [
        ("0", "1"),
        ("0", "2"),
        ("1", "1"),
        ("1", "2"),
    ]
    assert [o["src"] for o in red] == maps_of(1)
    assert [o["width"] for o in red] == [8, 16, 8, 16]  # the maps' own size, scaled by CSS
    assert "active" in chips[1].get_attribute("class")

    chips[2].click()  # "circle"
    circle = _overlays(driver)
    assert [o["src"] for o in circle] == maps_of(2) != maps_of(1)
    driver.save_screenshot(str(tmp_path / "serve_page.png"))
    if os.environ.get("T2I_WEB_SCREENSHOT"):
        shutil.copyfile(tmp_path / "serve_page.png", os.environ["T2I_WEB_SCREENSHOT"])
    chips[2].click()  # unpinned: the overlay goes once the pointer leaves the chip
    driver.find_element(By.ID, "caption").click()
    assert not any(o["shown"] for o in _overlays(driver))

    # a second generation, then the first one shown again from the history
    _generate(driver, "a blue square", 3, 1)
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history li")) == 2, "history")
    assert _wait(driver, _images_decoded, "the second reply") == [8, 16, 32]
    entries = driver.find_elements(By.CSS_SELECTOR, "#history li button")
    assert [e.text for e in entries] == ["a blue square", CAPTION]
    entries[1].click()
    assert _wait(driver, _images_decoded, "the first reply again") == widths
    assert [c.text.removesuffix(" ?") for c in driver.find_elements(By.CSS_SELECTOR, ".chip")] == [
        "a",
        "red",
        "circle",
        "zzqq",
    ]

    # a bad request: the server's one-line error, visibly
    _generate(driver, "   ", None, 1)
    error = _wait(
        driver, lambda d: d.find_element(By.ID, "error").is_displayed(), "the error box"
    ) and driver.find_element(By.ID, "error")
    assert error.text == "422: captions[0] is empty or whitespace [captions[0]]"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#history li")) == 2  # not recorded
    _generate(driver, "a green star", None, 1)  # the next good request clears it
    _wait(driver, lambda d: not d.find_element(By.ID, "error").is_displayed(), "error cleared")
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history li")) == 3, "history")
