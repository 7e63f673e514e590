"""A class on one server: N browser tabs each train a 1D run, one more tab clicks, and the
figures a shared server is judged by are printed. A benchmark, not a test (figures, not asserts):

    python tests/load_server.py [--runs 8] [--seconds 40] [--lab gauss1d|mnist]

It starts `streamlit run app.py` on a free port, opens N tabs of the lab (the 1D lab, or the
MNIST lab on its DCGAN preset: a step 50 times the 1D one's) in Debian's
Chromium (Playwright), presses Start in each, then for --seconds measures
  * the server's health endpoint (/_stcore/health), polled four times a second;
  * click to answer in one more tab: Pause, until its button reads Resume (a full round trip
    through the server's script thread), then until the status reads Paused (the charts' next
    refresh); Resume, back again.
and prints p50, p95 and max of each.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("streamlit did not come up")


LABS = {"gauss1d": "gauss1d", "mnist": "mnist-dcgan"}     # lab page: the preset its tabs train


def long_run_link(port: int, lab: str, steps: int) -> str:
    from ganlab.config import encode_config
    from ganlab.presets import get_preset
    base = get_preset(LABS[lab]).config
    return (f"http://127.0.0.1:{port}/{lab}?preset={LABS[lab]}"
            f"&cfg={encode_config(base.replace(train={'steps': steps}), base)}")


def figures(name: str, seconds: list[float]) -> str:
    if not seconds:
        return f"{name}: no samples"
    a = np.array(seconds)
    return (f"{name}: n={len(a)}  p50 {np.percentile(a, 50):.3f} s  p95 {np.percentile(a, 95):.3f} s  "
            f"max {a.max():.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--lab", choices=sorted(LABS), default="gauss1d")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="MNIST folder (GANLAB_DATA)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    saves = tempfile.mkdtemp(prefix="ganlab-load-")
    env = dict(os.environ, GANLAB_SAVES=saves, GANLAB_STORE=os.path.join(saves, "store"), GANLAB_DATA=args.data,
               GANLAB_MAX_RUNS=str(args.runs + 1), GANLAB_MAX_RUNS_PER_SESSION=str(args.runs + 1))
    server = start_server(port, env)
    health: list[float] = []
    clicks: list[float] = []
    statuses: list[float] = []
    started: list[float] = []
    stop = threading.Event()

    def poll_health() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=60).read()
            except OSError:
                pass
            health.append(time.perf_counter() - t)
            stop.wait(0.25)

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox", "--headless", "--disable-gpu"])
            link = long_run_link(port, args.lab, 200_000)
            start, pause = f".st-key-{args.lab}-start button", f".st-key-{args.lab}-pause button"
            tabs = []
            for i in range(args.runs + 1):
                tab = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                tab.goto(link)
                tab.locator(start).first.wait_for(timeout=120_000)
                tabs.append(tab)
            for tab in tabs[:args.runs]:
                t = time.perf_counter()
                tab.locator(start).first.click()
                tab.get_by_text("Training", exact=True).first.wait_for(timeout=300_000)
                started.append(time.perf_counter() - t)
            print(figures(f"Start to 'Training', runs 1 to {args.runs}", started), flush=True)
            watcher = threading.Thread(target=poll_health, daemon=True)
            watcher.start()
            me = tabs[-1]
            me.locator(start).first.click()
            me.get_by_text("Training", exact=True).first.wait_for(timeout=300_000)
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                for now, then, badge in (("Pause", "Resume", "Paused"), ("Resume", "Pause", "Training")):
                    # Answered: the button has turned over (one full rerun of the page). The status
                    # badge follows at the charts' next refresh, timed separately.
                    t = time.perf_counter()
                    me.locator(pause, has_text=now).first.click()
                    me.locator(pause, has_text=then).first.wait_for(timeout=300_000)
                    clicks.append(time.perf_counter() - t)
                    me.get_by_text(badge, exact=True).first.wait_for(timeout=300_000)
                    statuses.append(time.perf_counter() - t)
            stop.set()
            browser.close()
    finally:
        stop.set()
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(saves, ignore_errors=True)
    print(f"{args.runs} runs of {LABS[args.lab]} training on {os.cpu_count()} cores, one more tab clicking:")
    print(figures("  click to answer (Pause or Resume: the button turns over)", clicks))
    print(figures("  click to the status badge's change", statuses))
    print(figures("  health endpoint", health))


if __name__ == "__main__":
    main()
