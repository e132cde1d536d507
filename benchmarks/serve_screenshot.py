"""Drive ``ganpso serve`` in headless Chromium: upload a photo, wait for the bars, screenshot.

Needs Debian's Chromium (``apt-get install chromium``) and ``pip install playwright`` (its
browser downloads are not used: Chromium is the system one). A one-off check of the demo page in
a browser; CI tests the same server through an HTTP client (tests/test_inference.py).

    python benchmarks/serve_screenshot.py --out results/inference/serve-screenshot.png
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright
from skimage import data as skdata

from ganpso.inference import EmotionPredictor
from ganpso.inference.server import PredictionServer

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=Path("results/inference/serve-screenshot.png"))
    args = parser.parse_args()

    server = PredictionServer(EmotionPredictor.from_pretrained(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        photo = Path(folder) / "astronaut.jpg"
        Image.fromarray(skdata.astronaut()).save(photo, quality=92)
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        page.goto(server.url)
        page.set_input_files("#file", str(photo))
        page.wait_for_selector(".face", timeout=30_000)
        status = page.inner_text("#status")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out), full_page=True)
        page.set_input_files("#file", str(Path(__file__)))  # not an image: a clear message
        page.wait_for_selector("#status.error", timeout=30_000)
        error = page.inner_text("#status")
        version = browser.version
        browser.close()
    server.shutdown()
    record = {
        "check": "ganpso serve in headless Chromium: upload, boxes and bars, bad upload",
        "browser": f"Chromium {version} (headless, Debian package)",
        "status_after_photo": status,
        "status_after_non_image": error,
        "screenshot": str(args.out),
        "command": "python benchmarks/serve_screenshot.py",
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
