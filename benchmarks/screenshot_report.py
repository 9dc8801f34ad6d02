"""Screenshot an evaluation's listening page (report.html) with headless Chromium, to check how it looks.

    python benchmarks/screenshot_report.py OUT_DIR [--output OUT_DIR/report.png] [--width 1280] [--height 2400]

Needs Chromium (Debian: `apt-get install chromium`; `chromium-browser` and `google-chrome` are tried too). Runs
offline in a fresh temporary profile with networking features off; the page itself loads nothing from the network.
Not part of CI.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--mute-audio")


def find_browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def screenshot(page: Path, output: Path, width: int, height: int, timeout: float = 120.0) -> None:
    """Render `page` into the PNG `output` at `width` x `height` CSS pixels."""
    browser = find_browser()
    if browser is None:
        raise SystemExit("no Chromium found: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="lmcodec-chromium-") as profile:
        command = [browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={output.resolve()}",
                   f"--window-size={width},{height}", page.resolve().as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 or not output.is_file():
        lines = (result.stderr or "").strip().splitlines()
        raise SystemExit(f"chromium failed (exit {result.returncode}): {lines[-1] if lines else 'no output'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="an evaluation output folder (with report.html)")
    parser.add_argument("--output", help="PNG to write (default: OUT_DIR/report.png)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args(argv)
    page = Path(args.out_dir) / "report.html"
    if not page.is_file():
        print(f"no report.html in {args.out_dir}: run `lmcodec evaluate DATA --out {args.out_dir}` first",
              file=sys.stderr)
        return 2
    output = Path(args.output) if args.output else Path(args.out_dir) / "report.png"
    screenshot(page, output, args.width, args.height)
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
