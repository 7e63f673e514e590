"""End to end in a real browser: Debian's Chromium, driven by Playwright, against
`streamlit run app.py`. It presses Start, sees the charts change, presses Stop
and sees the status change. Screenshots go to test-artifacts/.
"""
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlparse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed "
                                "(apt-get install chromium); .ci/run installs it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(log_name: str = "streamlit.log", **env_vars):
    """`streamlit run app.py` on a free port, as a user starts it; yields its URL."""
    port = free_port()
    env = dict(os.environ, GANLAB_DATA=str(SHARED_DATA), **env_vars)
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / log_name, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"streamlit did not come up; see {ARTIFACTS / log_name}")
        time.sleep(0.5)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def server():
    with streamlit_server() as url:
        yield url


@pytest.fixture
def page(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        yield page
        browser.close()


def button(page, key: str):
    """A widget by its Streamlit key (the header has a "Stop" button of its own)."""
    return page.locator(f".st-key-{key} button").first


def chart_title(page, index: int) -> str:
    """The index-th chart's title, or "" while the page is redrawing it."""
    titles = page.locator(".js-plotly-plot .gtitle")
    try:
        return titles.nth(index).text_content(timeout=1000) or ""
    except playwright.Error:
        return ""


def wait_for_change(page, read, before: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = read()
        if now and now != before:
            return now
        page.wait_for_timeout(500)
    raise AssertionError(f"stayed at {before!r} for {timeout:.0f} s")


def sidebar_pages(page) -> list[str]:
    nav = page.locator('[data-testid="stSidebarNav"] a')
    nav.first.wait_for(timeout=90_000)
    return [label.strip() for label in nav.all_inner_texts()]


def test_a_link_to_a_lab_opens_that_lab_with_its_preset_even_as_a_fresh_servers_first_visit(page, server):
    # The first visit to a fresh server is routed by Streamlit's legacy pages/ rules, which
    # would list every file in pages/ (ui.py too) in the sidebar.
    page.goto(f"{server}/gauss1d?preset=gauss1d-seed000")
    page.get_by_text("1D Gaussian lab").first.wait_for(timeout=90_000)
    page.get_by_text("does not converge").first.wait_for(timeout=30_000)    # the seed-000 preset's warning
    pages = sidebar_pages(page)
    assert any("1D Gaussian lab" in p for p in pages) and not any(p.endswith("ui") for p in pages), pages
    assert urlparse(page.url).path == "/gauss1d"
    assert not page.get_by_text("Page not found").count()
    main = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()
    assert main["width"] > 900, main            # app.py's wide layout, not the narrow default
    page.goto(server)                                                         # the root: the home page
    page.locator('[data-testid="stPageLink"] a').first.wait_for(timeout=30_000)
    assert not page.get_by_role("button", name="Deploy").count()              # a viewer's toolbar
    page.locator('[data-testid="stPageLink"] a', has_text="MNIST lab").click()
    page.get_by_role("heading", name="MNIST lab").wait_for(timeout=30_000)
    assert urlparse(page.url).path == "/mnist"


def test_an_upload_on_a_fresh_servers_first_visit_to_saved_runs_is_imported(page, tmp_path):
    # The first visit is routed by the legacy rules; the page's widgets must already be the ones
    # later runs draw, or the upload is dropped on the next run with no word.
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import tiny
    from ganlab import checkpoints
    from ganlab.runs import RunRegistry
    run = RunRegistry().create(tiny(20), name="carried")
    assert run.join(60)
    upload = tmp_path / "carried.zip"
    upload.write_bytes(checkpoints.zip_folder(checkpoints.save(run, tmp_path / "made" / "carried")))
    saves = tmp_path / "saves"
    with streamlit_server("streamlit-fresh.log", GANLAB_SAVES=str(saves)) as fresh:
        page.goto(f"{fresh}/saved")
        page.get_by_text("No checkpoints yet").first.wait_for(timeout=90_000)
        page.locator('input[type="file"]').first.set_input_files(str(upload))
        page.get_by_text("Imported as").first.wait_for(timeout=60_000)
    assert [p.name for p in saves.iterdir()] == ["carried"]


def test_1d_page_trains_live_and_stops(page, server):
    page.goto(f"{server}/gauss1d")
    button(page, "gauss1d-start").wait_for(timeout=90_000)
    button(page, "gauss1d-start").click()
    density = lambda: chart_title(page, 0)                    # "Real and generated densities (step N)"
    first = wait_for_change(page, density, "")
    second = wait_for_change(page, density, first)
    third = wait_for_change(page, density, second)
    assert "densities" in third
    page.screenshot(path=str(ARTIFACTS / "gauss1d-training.png"), full_page=True)
    assert page.get_by_text("Training").first.is_visible()
    button(page, "gauss1d-stop").click()
    page.get_by_text("Stopped").first.wait_for(timeout=30_000)
    assert "run" in parse_qs(urlparse(page.url).query)     # a reload would re-attach to this run
    page.screenshot(path=str(ARTIFACTS / "gauss1d-stopped.png"), full_page=True)


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(),
                    reason=f"the real MNIST test split is not at {SHARED_DATA}")
def test_mnist_page_shows_a_grid_that_changes(page, server):
    page.goto(f"{server}/mnist")
    button(page, "mnist-start").wait_for(timeout=90_000)
    button(page, "mnist-start").click()
    grid = lambda: chart_title(page, 0)                       # "Samples from a fixed z, step N"
    first = wait_for_change(page, grid, "", timeout=180)
    second = wait_for_change(page, grid, first, timeout=180)
    assert "Samples from a fixed z" in second
    page.screenshot(path=str(ARTIFACTS / "mnist-training.png"), full_page=True)
    button(page, "mnist-stop").click()
    page.get_by_text("Stopped").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "mnist-stopped.png"), full_page=True)


def settled_box(page, locator, timeout: float = 30) -> dict:
    """The element's box once the page around it has stopped moving (elements load lazily,
    a dataframe's grid for one, and push what follows down when they do)."""
    page.wait_for_load_state("networkidle")
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        to_top(page)
        box = locator.bounding_box()
        loading = page.locator('[data-testid="stSkeleton"]:visible, [data-testid="stSkeletonElement"]:visible').count()
        if box is not None and box == last and not loading:
            return box
        last = box
        page.wait_for_timeout(700)
    raise AssertionError(f"the page kept moving: {last}")


def to_top(page) -> None:
    """Scroll the page (Streamlit scrolls its main area, not the window) back to its top."""
    page.evaluate("""() => { window.scrollTo(0, 0);
        document.querySelectorAll('[data-testid="stMain"]').forEach(el => el.scrollTo(0, 0)); }""")


def test_teaching_mode_from_a_link_on_a_projector_shows_a_large_chart_on_the_first_screen(page, server):
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{server}/gauss1d?teach=1")
    button(page, "gauss1d-start").wait_for(timeout=90_000)
    teaching = page.locator(".st-key-teaching-mode input").first
    assert teaching.is_checked()
    button(page, "gauss1d-start").click()
    wait_for_change(page, lambda: chart_title(page, 0) if "densities (step" in chart_title(page, 0) else "", "")
    assert not page.get_by_role("button", name="Apply").is_visible()     # "Change while training" stays shut
    top = settled_box(page, page.locator(".js-plotly-plot").first)["y"]
    page.screenshot(path=str(ARTIFACTS / "gauss1d-teaching-1280x720.png"))
    assert 0 <= top < 720, top                                            # the chart starts on the first screen
    sizes = page.locator(".js-plotly-plot .xtick text").evaluate_all(
        "ticks => ticks.map(t => parseFloat(getComputedStyle(t).fontSize))")
    assert sizes and min(sizes) >= 16, sizes                              # legible from the back of a room
    page.get_by_text("Change while training").first.click()              # asked for: it opens, and stays open
    page.get_by_role("button", name="Apply").wait_for(timeout=30_000)
    # The loss's name is not cut off: the element that shows it (a text, or a search input) is as
    # wide as its text.
    fits = page.locator('[class*="-change-"][class*="-loss"]').first.evaluate("""picker => [...picker.querySelectorAll('*')]
        .filter(e => (e.tagName === 'INPUT' ? e.value : e.childElementCount === 0 ? e.textContent : '')
                     .includes('BCE, non-saturating G loss'))
        .map(e => e.scrollWidth <= e.clientWidth)""")
    assert fits and all(fits), fits
    title = chart_title(page, 0)
    wait_for_change(page, lambda: chart_title(page, 0), title)            # a live refresh later
    assert page.get_by_role("button", name="Apply").is_visible()
    page.reload()                                                         # teaching mode survives a reload
    button(page, "gauss1d-stop").wait_for(timeout=90_000)
    assert page.locator(".st-key-teaching-mode input").first.is_checked()
    assert parse_qs(urlparse(page.url).query).get("teach") == ["1"]
    page.get_by_text("turn teaching mode off").first.wait_for(timeout=30_000)
    if button(page, "gauss1d-stop").is_enabled():
        button(page, "gauss1d-stop").click()


def test_teaching_mode_follows_to_another_page_where_start_all_is_on_the_first_screen(page, server):
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{server}/gauss1d?teach=1")
    button(page, "gauss1d-start").wait_for(timeout=90_000)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Loss lab").click()   # a page switch drops the query
    start = button(page, "cmp-start")
    start.wait_for(timeout=90_000)
    page.wait_for_function("() => new URLSearchParams(location.search).get('teach') === '1'", timeout=30_000)
    assert page.locator(".st-key-teaching-mode input").first.is_checked()
    page.get_by_text("What to look for").first.wait_for(timeout=30_000)   # the page's end is drawn
    box = settled_box(page, start)
    assert box["y"] + box["height"] <= 720, box                          # the reading notes come after the charts
    notes = page.get_by_text("What to look for").first.bounding_box()
    assert notes["y"] > box["y"], (notes, box)
    # While its runs train, the comparison's first chart starts on the first screen too: each run's
    # status and controls come after it.
    start.click()
    wait_for_change(page, lambda: chart_title(page, 0) if "densities (step" in chart_title(page, 0) else "", "")
    page.get_by_text("Training", exact=True).first.wait_for(timeout=60_000)
    top = settled_box(page, page.locator(".js-plotly-plot").first)["y"]
    page.screenshot(path=str(ARTIFACTS / "compare-teaching-1280x720.png"))
    assert 0 <= top < 720, top
    badge = page.get_by_text("Training", exact=True).first.bounding_box()
    assert badge["y"] > top, (badge, top)
    button(page, "cmp-stop").click()
    page.get_by_text("Stopped", exact=True).first.wait_for(timeout=60_000)
