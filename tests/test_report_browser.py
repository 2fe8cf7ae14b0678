"""The rendered HTML reports in a real browser (issue 7): headless Chromium driven by Selenium.

Loads ``<output>/reports/2024-03-D2/index.html`` (and ``<output>/reports/index.html`` where the routine
writes one) from disk, and checks that the page is self-contained (under 5 MB, nothing fetched from the
network), loads without console errors, and shows every image at a non-zero size. A full-page screenshot
goes to the test's tmp dir and next to the page (``screenshot.png``), to be looked at.

The browser is Debian's ``chromium`` driven by its ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``), installed by ``make browser`` (which ``make test`` runs) where apt is usable;
``EO4DM_CHROMIUM`` and ``EO4DM_CHROMEDRIVER`` point at others. Selenium is given both paths, so it never
tries to download a browser or a driver. Without them the tests skip and say why.
"""

import base64
import os
import re
import shutil
from html.parser import HTMLParser

import pytest

from eo4dm_helpers.config import load_config

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]' (make test does it)")
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DEKAD = "2024-03-D2"
MAX_BYTES = 5 * 1024 * 1024
MAX_SHOT_HEIGHT = 16000  # px: Chromium's largest capture
CHROMIUM = os.environ.get("EO4DM_CHROMIUM") or shutil.which("chromium")
CHROMEDRIVER = os.environ.get("EO4DM_CHROMEDRIVER") or shutil.which("chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
    "--disable-extensions", "--window-size=1280,900", "--hide-scrollbars",
    # No name resolves for the page: a report that needs the network shows it on any machine, online or not.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
)

# Elements whose attribute makes the browser fetch something when the page loads (links <a> do not).
FETCHING = {"script": ("src",), "link": ("href",), "img": ("src", "srcset"), "iframe": ("src",),
            "source": ("src", "srcset"), "video": ("src", "poster"), "audio": ("src",), "embed": ("src",),
            "object": ("data",), "input": ("src",), "track": ("src",)}
REMOTE = re.compile(r"^\s*(https?:)?//", re.I)
CSS_REMOTE = re.compile(r"""(@import\s+['"]|url\(\s*['"]?)(https?:)?//""", re.I)

IMAGES_JS = """
return Array.from(document.images).map(function (img) {
  var r = img.getBoundingClientRect();
  return {src: (img.currentSrc || img.src).slice(0, 48), alt: img.alt, complete: img.complete,
          natural: [img.naturalWidth, img.naturalHeight], shown: [r.width, r.height]};
});
"""


class _RemoteRefs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in FETCHING.get(tag, ()) and value and any(REMOTE.match(v) for v in value.split(",")):
                self.found.append(f"<{tag} {name}={value[:100]}>")
            if name == "style" and value and CSS_REMOTE.search(value):
                self.found.append(f"<{tag} style=...{CSS_REMOTE.search(value).group(0)}...>")


def remote_references(html: str) -> list[str]:
    """What in ``html`` would be fetched from another host: script/link/img/... sources and CSS urls."""
    parser = _RemoteRefs()
    parser.feed(html)
    parser.close()
    for m in CSS_REMOTE.finditer("\n".join(re.findall(r"<style[^>]*>(.*?)</style>", html, re.S | re.I))):
        parser.found.append(f"<style> {m.group(0)}")
    return parser.found


def test_remote_references_finds_what_a_browser_would_fetch():
    page = """<html><head><script src="https://cdn.example/require.js"></script>
    <link rel="stylesheet" href="//fonts.example/css"><style>body {background: url('http://x/y.png')}</style>
    <script>var a = "https://in-a-string.example";</script></head>
    <body><a href="https://example.org">a link fetches nothing</a><img src="data:image/png;base64,AAAA">
    <img src="map.png"></body></html>"""
    found = remote_references(page)
    assert len(found) == 3 and "require.js" in found[0] and "fonts.example" in found[1] and "http://" in found[2]


MISSING = " and ".join(n for n, p in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not p)
needs_browser = pytest.mark.skipif(  # decided before any fixture runs: no demo routine for a skip
    bool(MISSING), reason=f"no {MISSING} on PATH: `make browser` installs Debian's chromium and chromium-driver "
    "where apt is usable (root or password-less sudo); or set EO4DM_CHROMIUM / EO4DM_CHROMEDRIVER")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    home = tmp_path_factory.mktemp("chromium")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={home / 'profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER, log_output=str(home / "chromedriver.log"))
    try:
        driver = webdriver.Chrome(options=opts, service=service)
    except Exception as exc:  # found but does not start: a broken install is a failure, not a skip
        pytest.fail(f"{CHROMIUM} through {CHROMEDRIVER} did not start: {exc}\n(log: {home / 'chromedriver.log'})")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _screenshot(driver, *dests):
    """The whole page, not only the window, as PNG into each of ``dests``."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], MAX_SHOT_HEIGHT), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True, "clip": clip})
    png = base64.b64decode(shot["data"])
    for dest in dests:
        dest.write_bytes(png)
    return png


def _all_images_loaded(driver):
    return driver.execute_script(
        "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)")


@needs_browser
@pytest.mark.parametrize("which", ["report", "index"])
def test_report_in_a_real_browser(demo_run, browser, tmp_path, which):
    params, _ = demo_run
    reports = load_config(params).paths.output / "reports"
    page = reports / DEKAD / "index.html" if which == "report" else reports / "index.html"
    if not page.exists():
        assert which == "index", f"{page} not written"
        pytest.skip(f"{page} is not written by this version of the routine")

    html = page.read_text(encoding="utf-8")
    assert page.stat().st_size < MAX_BYTES, f"{page}: {page.stat().st_size / 2**20:.1f} MB, over 5 MB"
    remote = remote_references(html)

    browser.get_log("browser")  # drop what an earlier page logged
    browser.get(page.as_uri())
    WebDriverWait(browser, 30).until(_all_images_loaded)
    png = _screenshot(browser, tmp_path / f"{which}.png", page.parent / "screenshot.png")
    console = browser.get_log("browser")
    images = browser.execute_script(IMAGES_JS)
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    text = browser.execute_script("return document.body.innerText")

    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    problems = [f"loads from the network: {r}" for r in remote]  # every problem at once, not the first only
    problems += [f"fetched: {u}" for u in fetched if not u.startswith(("file:", "data:", "blob:"))]
    problems += [f"console {e['level']}: {e['message']}" for e in console if e["level"] == "SEVERE"]
    problems += [f"image not shown: {i}" for i in images
                 if not (i["complete"] and min(i["natural"]) > 0 and min(i["shown"]) > 0)]
    if which == "report":
        if len(images) < 5:  # VHI, VCI, TCI, QSCORE, VAI maps
            problems.append(f"{len(images)} images, expected the 5 maps at least")
        problems += [f"no {t!r} in the page" for t in ("Drought bulletin", "Centre-Ouest") if t not in text]
    assert not problems, f"{page} (screenshot {tmp_path / f'{which}.png'}):\n" + "\n".join(problems)
