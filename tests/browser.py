"""A real headless Chromium (Debian's chromium and chromium-driver, driven through selenium) for the tests that
render the HTML report. ``./run test`` installs the two packages when they are missing and it can (root and
apt-get); where they are still missing the tests skip, saying so."""

from __future__ import annotations

import os
import shutil

import pytest

# as root, on a closed network: no sandbox, no GPU, and no background connections (refused here, many at a time)
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,2000")

# every image decoded, and what the page's own scripts and loads reported
PAGE_STATE = """
return {
  images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
  rows: Array.from(document.querySelectorAll('#layers tr[data-layer]')).map(r => ({
    layer: r.dataset.layer, sparsity: parseFloat(r.dataset.sparsity), dense: parseFloat(r.dataset.denseMs),
    pruned: parseFloat(r.dataset.prunedMs), shown: r.cells[2].innerText})),
  summary: (document.getElementById('summary') || {innerText: ''}).innerText,
  title: document.title,
  overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
};
"""


def start_chromium(user_data_dir):
    """A selenium driver of Debian's Chromium, or a skip naming what is missing."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("Debian's chromium and chromium-driver are not installed (./run test installs them with "
                    "apt-get when run as root with the package index reachable; it could not here)")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not look for a browser to download
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={user_data_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def open_page(browser, path) -> tuple[dict, list[str]]:
    """Load the file ``path``; return the page's state (``PAGE_STATE``) and its problems: images that did not
    load, and every error the browser's console recorded (script errors, failed loads)."""
    browser.get(path.resolve().as_uri())
    state = browser.execute_script(PAGE_STATE)
    problems = [f"image {image['src']} did not load" for image in state["images"] if not image["ok"]]
    problems += [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    return state, problems
