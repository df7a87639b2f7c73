"""The studio page in a real Chromium (Debian's, headless, through Selenium): every photo tab."""

from __future__ import annotations

import http.client
import io
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import vbg
from vbg.measure.metrics import iou
from vbg.web.app import create_app, serve_in_thread

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install -e '.[test]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
PORTRAIT = "000000000036"
OTHER = "000000000110"
WAIT = 60  # seconds: a cut-out on a loaded 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("studio-out")
    handle = serve_in_thread(create_app(port=0, output_dir=out), "127.0.0.1", 0)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def browser(server):
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("Debian's chromium + chromium-driver are not installed and could not be "
                    "(run tools/ensure_chromium.sh as root: apt-get install chromium "
                    "chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def fetch(server, url: str) -> bytes:
    """GET a path of the server (as the page's own origin would)."""
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    path = url.split(f":{port}", 1)[-1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    reply = conn.getresponse()
    assert reply.status == 200, reply.read()[:200]
    return reply.read()


def open_tab(browser, server, name: str) -> None:
    if not browser.current_url.startswith(server.url):
        browser.get(server.url)
    browser.find_element(By.CSS_SELECTOR, f'#tabs button[data-tab="{name}"]').click()
    WebDriverWait(browser, 10).until(ec.visibility_of_element_located((By.ID, f"tab-{name}")))


def choose_files(browser, input_id: str, paths: list[Path]) -> None:
    field = browser.find_element(By.ID, input_id)
    browser.execute_script("arguments[0].hidden = false", field)  # Selenium types into it
    field.send_keys("\n".join(str(p) for p in paths))
    browser.execute_script("arguments[0].hidden = true", field)


def screenshot(browser, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def loaded(browser, image_id: str):
    return lambda _: browser.execute_script(
        "const i = document.getElementById(arguments[0]); "
        "return i.src && i.complete && i.naturalWidth > 0 ? i.src : null", image_id)


def test_single_image_cutout(browser, server, shared_set):
    photos = shared_set("coco_person")
    photo = photos / "images" / f"{PORTRAIT}.jpg"
    open_tab(browser, server, "single")
    choose_files(browser, "single-file", [photo])
    src = WebDriverWait(browser, WAIT).until(loaded(browser, "single-after"))
    assert browser.find_element(By.ID, "single-error").get_attribute("hidden")
    result = cv2.imdecode(np.frombuffer(fetch(server, src), np.uint8), cv2.IMREAD_UNCHANGED)
    assert result.shape[2] == 4, "transparent by default"
    alpha = result[:, :, 3] / 255.0
    truth = cv2.imread(str(photos / "alpha" / f"{PORTRAIT}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    library = vbg.cut_out(str(photo))[:, :, 3] / 255.0
    assert iou(alpha, library) >= 0.99, "the page's cut-out is the library's"
    assert iou(alpha, truth) > 0.5
    browser.execute_script("document.getElementById('single-split').value = 40; "
                           "document.getElementById('single-split').dispatchEvent("
                           "new Event('input'))")
    screenshot(browser, "single")


def test_single_image_error_in_words(browser, server, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    open_tab(browser, server, "single")
    choose_files(browser, "single-file", [text])
    error = browser.find_element(By.ID, "single-error")
    WebDriverWait(browser, WAIT).until(lambda _: error.is_displayed())
    assert "notes.txt: not an image file" in error.text


def test_batch_with_a_broken_file(browser, server, shared_set, tmp_path):
    photos = shared_set("coco_person") / "images"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((photos / f"{OTHER}.jpg").read_bytes()[:4000])
    shoot = tmp_path / "shoot.zip"
    with zipfile.ZipFile(shoot, "w") as archive:
        archive.write(photos / f"{OTHER}.jpg", "day1/zipped.jpg")
    files = [photos / f"{PORTRAIT}.jpg", broken, photos / f"{OTHER}.jpg", shoot]
    open_tab(browser, server, "batch")
    browser.find_element(By.CSS_SELECTOR, 'input[name=bgkind][value=color]').click()
    choose_files(browser, "batch-files", files)
    browser.find_element(By.ID, "batch-go").click()
    done = browser.find_element(By.ID, "batch-done")
    WebDriverWait(browser, WAIT * 2).until(lambda _: done.is_displayed())
    states = [li.find_element(By.CLASS_NAME, "state").text
              for li in browser.find_elements(By.CSS_SELECTOR, "#batch-list li")]
    assert states == ["done", "failed", "done", "1 photo", "done"]
    reason = browser.find_element(By.CSS_SELECTOR, "#batch-list li .reason").text
    assert "broken.jpg" in reason and "truncated" in reason
    folder = Path(browser.find_element(By.ID, "batch-folder").text)
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{PORTRAIT}.png",
                                                               f"{OTHER}.png", "zipped.png"])
    screenshot(browser, "batch")
    archive = zipfile.ZipFile(io.BytesIO(fetch(server, browser.find_element(
        By.ID, "batch-zip").get_attribute("href"))))
    assert sorted(archive.namelist()) == sorted([f"{PORTRAIT}.png", f"{OTHER}.png",
                                                 "zipped.png", "errors.txt"])
    errors = archive.read("errors.txt").decode().splitlines()
    assert len(errors) == 1 and errors[0].startswith("broken.jpg: truncated JPEG")
    white = cv2.imdecode(np.frombuffer(archive.read(f"{OTHER}.png"), np.uint8),
                         cv2.IMREAD_UNCHANGED)
    assert white.shape[2] == 3 and (white[:3, :3] > 245).all(), "on the chosen white"
    shutil.rmtree(folder)


def test_id_photo(browser, server, shared_set):
    photo = shared_set("coco_person") / "images" / f"{PORTRAIT}.jpg"
    open_tab(browser, server, "idphoto")
    choose_files(browser, "id-file", [photo])
    src = WebDriverWait(browser, WAIT).until(loaded(browser, "id-result"))
    result = cv2.imdecode(np.frombuffer(fetch(server, src), np.uint8), cv2.IMREAD_COLOR)
    assert result.shape[:2] == (531, 413), "passport: 413x531 px"
    assert browser.find_element(By.ID, "id-report").text
    screenshot(browser, "id-photo")


def test_id_photo_problems_in_words_and_make_it_anyway(browser, server, shared_set):
    group = shared_set("coco_person") / "images" / f"{OTHER}.jpg"  # two people, head cut
    open_tab(browser, server, "idphoto")
    choose_files(browser, "id-file", [group])
    error = browser.find_element(By.ID, "id-error")
    WebDriverWait(browser, WAIT).until(lambda _: "2 faces" in error.text)
    browser.find_element(By.ID, "id-multiple").click()  # use the largest: another rule fails
    force = browser.find_element(By.ID, "id-force")
    WebDriverWait(browser, WAIT).until(lambda _: force.is_displayed())
    assert "not a valid passport photo" in error.text
    assert browser.find_elements(By.CSS_SELECTOR, "#id-report li.error")
    force.click()
    WebDriverWait(browser, WAIT).until(
        lambda _: "made anyway" in browser.find_element(By.ID, "id-info").text)
    assert not error.is_displayed() and not force.is_displayed()
    browser.find_element(By.ID, "id-multiple").click()


def test_about(browser, server):
    open_tab(browser, server, "about")
    table = browser.find_element(By.ID, "about-versions")
    WebDriverWait(browser, 10).until(lambda _: "fastapi" in table.text)
    assert "Apache-2.0" in browser.find_element(By.ID, "about-models").text
    screenshot(browser, "about")


def test_api_docs_page(browser, server):
    browser.get(server.url + "docs")
    WebDriverWait(browser, 10).until(
        lambda _: "POST /api/cutout" in browser.find_element(By.ID, "api").text)
    text = browser.find_element(By.ID, "api").text
    assert "curl -F image=@photo.jpg" in text and "POST /api/batch" in text


def test_no_script_errors(browser, server):
    browser.get(server.url)
    for tab in ("single", "batch", "idphoto", "live", "about"):
        open_tab(browser, server, tab)
    severe = [entry["message"] for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE"
              and "Failed to load resource" not in entry["message"]]  # the refused uploads
    assert not severe, severe



# A small PNG made in the page, then pasted (target "paste") or dropped on an element.
GIVE_FILE = """
const [name, target, done] = arguments;
(async () => {
  const canvas = document.createElement("canvas"); canvas.width = 64; canvas.height = 48;
  const ctx = canvas.getContext("2d"); ctx.fillStyle = "#8090a0"; ctx.fillRect(0, 0, 64, 48);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  const transfer = new DataTransfer();
  transfer.items.add(new File([blob], name, { type: "image/png" }));
  if (target === "paste") {
    document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer }));
  } else {
    document.getElementById(target).dispatchEvent(new DragEvent("drop",
      { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }
  done(true);
})();
"""


def test_paste_and_drop(browser, server):
    open_tab(browser, server, "single")
    browser.execute_script("document.getElementById('single-status').textContent = ''")
    browser.execute_async_script(GIVE_FILE, "pasted.png", "paste")
    WebDriverWait(browser, WAIT).until(
        lambda _: "pasted.png" in browser.find_element(By.ID, "single-drop").text)
    WebDriverWait(browser, WAIT).until(lambda _: browser.execute_script(
        "return document.getElementById('single-status').textContent.startsWith('done')"))
    open_tab(browser, server, "batch")
    before = len(browser.find_elements(By.CSS_SELECTOR, "#batch-list li"))
    browser.execute_async_script(GIVE_FILE, "dropped.png", "batch-drop")
    items = browser.find_elements(By.CSS_SELECTOR, "#batch-list li")
    assert len(items) == before + 1 and "dropped.png" in items[-1].text
