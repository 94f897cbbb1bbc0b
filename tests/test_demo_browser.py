"""The web demo in a real browser: Debian's headless chromium, driven by selenium through the system's
chromedriver (no browser download), uploads two frames, waits for the answer and reads the top label.

`.ci/run` installs chromium and its driver where they are missing, so CI always runs this; a machine without
them skips it, saying so. The screenshot is saved under the test's tmp dir (its path is printed) so that a
person can look at the page.
"""

import shutil
import time

import pytest
from conftest import free_port
from test_demo import environment_untouched, frames  # noqa: F401  (fixtures)

pytest.importorskip("gradio", reason="the demo extra (pip install 'hf-mmmer[demo]') is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the dev extra) is not installed")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from hf_mmmer.demo.app import LAUNCH_OPTIONS, build_app  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; "
    ".ci/run does it)",
)


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1300"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def page_url(model_dir):
    app = build_app(model_dir)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_OPTIONS)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def top_label(driver) -> str | None:
    shown = driver.find_elements(By.CSS_SELECTOR, "#scores [data-testid='label-output-value']")
    return shown[0].text.strip() or None if shown else None


def test_two_uploaded_frames_give_a_label_on_the_page(browser, page_url, frames, tmp_path):  # noqa: F811
    started = time.monotonic()
    browser.get(page_url)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#apex input[type=file]"))
    browser.find_element(By.CSS_SELECTOR, "#onset input[type=file]").send_keys(str(frames["onset"]))
    browser.find_element(By.CSS_SELECTOR, "#apex input[type=file]").send_keys(str(frames["apex"]))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#onset img, #apex img")) >= 2)  # both uploaded
    browser.find_element(By.CSS_SELECTOR, "#classify-pair").click()
    label = wait.until(top_label)
    screenshot = tmp_path / "demo_page.png"
    browser.save_screenshot(str(screenshot))
    print(f"screenshot: {screenshot}")
    assert label in {"negative", "positive", "surprise"}
    info = browser.find_element(By.CSS_SELECTOR, "#info").text
    assert info.startswith(label) and "face crop off" in info
    heatmap = browser.find_element(By.CSS_SELECTOR, "#heatmap img")
    assert heatmap.get_attribute("naturalWidth") == "512"  # face and motion-importance panels
    assert screenshot.stat().st_size > 10_000
    assert time.monotonic() - started < 60
