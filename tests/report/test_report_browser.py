"""Open the HTML report in headless Chromium and look at the screenshot (skipped without it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prunebench.report import write_report
from report_db import sample_database

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]  # fmt: skip
WIDTH, HEIGHT = 1280, 2000
# Okabe-Ito colours of the regime lines: present only if the embedded PNG figures decoded.
ONE_SHOT, CONSTANT, GEOMETRIC = (0, 114, 178), (230, 159, 0), (0, 158, 115)


def screenshot(html: Path, png: Path, profile: Path) -> Image.Image:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
           f"--window-size={WIDTH},{HEIGHT}", html.resolve().as_uri()]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert png.exists(), "chromium wrote no screenshot"
    return Image.open(png).convert("RGB")


def count_near(image: np.ndarray, colour: tuple[int, int, int], tol: int = 12) -> int:
    return int((np.abs(image.astype(int) - colour) <= tol).all(axis=-1).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_renders_in_chromium(tmp_path):
    root = sample_database(tmp_path / "results")
    files = write_report(root)
    image = screenshot(files.html, tmp_path / "report.png", tmp_path / "profile")
    assert image.size == (WIDTH, HEIGHT)
    pixels = np.asarray(image)
    white = (pixels == 255).all(axis=-1).mean()
    assert 0.5 < white < 0.97, f"the page is blank or unstyled ({white:.0%} white)"
    # the first figure (regime comparison) shows each regime's colour: the PNGs decoded
    for colour in (ONE_SHOT, CONSTANT, GEOMETRIC):
        assert count_near(pixels, colour) > 200, f"no {colour} pixels: figure missing?"
    # nothing runs off the right edge (the last columns of the page are background)
    assert (pixels[:, -3:] == 255).all()
