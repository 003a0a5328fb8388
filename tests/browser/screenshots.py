"""The screenshot set for review: every page of every user, in Japanese and in English, at
1280x800 and 800x600 (``make screenshots``, or ``python -m tests.browser.screenshots``).

It runs the browser walk (tests/browser/test_every_page.py) on SQLite, which writes one PNG a
page to ``var/screenshots/<language>-<size>/<page>.png``, then copies the README's screenshot
to ``docs/screenshots/`` as a small palette PNG. The pages' checks run too: a page that fails
them still gets its screenshot, and the command's exit status is the walk's.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WALK = Path(__file__).with_name("test_every_page.py")
SCREENSHOTS = ROOT / "var" / "screenshots"  # where the walk writes them (test_every_page.SCREENSHOTS)
README_SOURCE = "ja-1280x800/candidate-sitting.png"
README_SCREENSHOT = ROOT / "docs" / "screenshots" / "sitting-ja.png"


def small_copy(source: Path, target: Path, screen: tuple[int, int] = (1280, 800), colours: int = 64) -> int:
    """The first ``screen`` of ``source`` (what the user sees before scrolling) as a PNG of
    ``colours`` colours (a page's flat colours and anti-aliased text keep their look); returns
    its size in bytes."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        first = image.convert("RGB").crop((0, 0, min(screen[0], image.width), min(screen[1], image.height)))
        first.quantize(colors=colours, dither=Image.Dither.NONE).save(target, optimize=True)
    return target.stat().st_size


def main(argv: list[str] | None = None) -> int:
    import pytest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="select", default="", help="only the pages whose test id has this (pytest -k)")
    args = parser.parse_args(argv)
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    # SQLite only: the walk looks at pages, and skips the PostgreSQL copy of the template.
    select = "sqlite" + (f" and ({args.select})" if args.select else "")
    status = pytest.main(["-q", "-p", "no:cacheprovider", str(WALK), "-k", select])
    shots = sorted(SCREENSHOTS.rglob("*.png"))
    print(f"screenshots: {len(shots)} pages in {SCREENSHOTS.relative_to(ROOT)}/")
    if (SCREENSHOTS / README_SOURCE).exists():
        size = small_copy(SCREENSHOTS / README_SOURCE, README_SCREENSHOT)
        print(f"the README's: {README_SCREENSHOT.relative_to(ROOT)} ({size // 1024} KiB)")
    return int(status) if shots else 1


if __name__ == "__main__":
    sys.exit(main())
