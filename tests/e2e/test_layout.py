"""The dashboard at a phone's, a small laptop's and a wide screen's width (390, 1,024 and
1,600 px), in a real browser against a real server on the demo ledger: no page-level
horizontal scroll, every panel's content inside its panel (or inside an element of it
that scrolls, with a scrollbar that shows), the failures' reason reachable, the header
wrapping, and no request to any other host. A screenshot per width goes to the
artifacts directory.

These are the regressions of issue 18: at 1,024 px the failures table overflowed its
panel with "gen" and "reason" behind a scroll without a visible scrollbar; at 390 px the
header did not wrap, the page was 769 px wide and generation boxes spilled out of their
panel.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ViewportSize, expect

from tests.e2e.pages import open_dashboard, open_page
from tests.services.api import ApiServer
from tests.services.browser import screenshot_dir

WIDTHS = [390, 1024, 1600]

# Every element of a panel (the fleet's, in <main id="dashboard">, or a route's page's, in
# <main id="page">: ``main > .panel`` covers both) and of the header that sticks out of
# it, unless it sits inside an element of that panel that scrolls horizontally; and
# whether each such scroller that does overflow shows a scrollbar taking room (not an
# overlay that only appears while scrolling).
SPILLS = """() => {
  const scrolls = (el) => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const boxes = [document.querySelector("body > header"),
                 ...document.querySelectorAll("main > .panel")];
  const spills = [];
  const hiddenScrollbars = [];
  for (const box of boxes) {
    const edge = box.getBoundingClientRect();
    const name = box.id || box.tagName.toLowerCase();
    if (box.scrollWidth > box.clientWidth + 1) spills.push(`${name} scrolls sideways`);
    for (const el of box.querySelectorAll("*")) {
      let inside = false;
      for (let up = el.parentElement; up && up !== box; up = up.parentElement) {
        if (scrolls(up)) { inside = true; break; }
      }
      if (inside) continue;
      const rect = el.getBoundingClientRect();
      if (rect.width === 0 && rect.height === 0) continue;
      if (rect.left < edge.left - 1 || rect.right > edge.right + 1) {
        const what = el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${el.className}`;
        spills.push(`${name}: ${what} spans ${Math.round(rect.left)}–${Math.round(rect.right)}`
                    + ` outside ${Math.round(edge.left)}–${Math.round(edge.right)}`);
      }
      if (scrolls(el) && el.scrollWidth > el.clientWidth + 1) {
        const style = getComputedStyle(el);
        const bar = el.offsetHeight - el.clientHeight
          - parseFloat(style.borderTopWidth) - parseFloat(style.borderBottomWidth);
        if (bar <= 0) hiddenScrollbars.push(`${name}: ${el.className || el.tagName}`);
      }
    }
  }
  return {spills, hiddenScrollbars};
}"""

# Where the newest failure's reason is: inside the failures panel's visible box, or
# inside a horizontal scroller (which then must show its scrollbar: checked above).
REASON = """() => {
  const cell = document.querySelector("#failures tbody tr td.reason");
  const panel = document.getElementById("failures-panel").getBoundingClientRect();
  const rect = cell.getBoundingClientRect();
  let scroller = null;
  for (let up = cell.parentElement; up && up.id !== "failures-panel"; up = up.parentElement) {
    const style = getComputedStyle(up);
    if (["auto", "scroll"].includes(style.overflowX) && up.scrollWidth > up.clientWidth + 1) {
      scroller = up;
      break;
    }
  }
  return {
    visible: rect.width > 0 && rect.left >= panel.left - 1 && rect.right <= panel.right + 1,
    scrolls: scroller !== null,
  };
}"""


def viewport(width: int) -> ViewportSize:
    return {"width": width, "height": 900}


@pytest.mark.parametrize("width", WIDTHS)
def test_the_page_fits_the_screen(screen: Browser, demo_server: ApiServer, width: int) -> None:
    with open_page(screen, viewport(width)) as page:
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        open_dashboard(page, demo_server)
        expect(page.locator("#where-placements tbody tr").first).to_be_visible()

        found = cast(dict[str, list[str]], page.evaluate(SPILLS))
        assert found["spills"] == [], "\n".join(found["spills"])
        assert found["hiddenScrollbars"] == []

        assert page.evaluate("window.innerWidth") == width
        page_width = page.evaluate("document.documentElement.scrollWidth")
        assert page_width <= width, f"the page is {page_width} px wide at {width} px"
        # Nor wider than what is left beside the page's own vertical scrollbar.
        assert page_width <= page.evaluate("document.documentElement.clientWidth")

        reason = cast(dict[str, bool], page.evaluate(REASON))
        assert reason["visible"] or reason["scrolls"], reason
        page.screenshot(path=screenshot_dir() / f"layout-{width}.png", full_page=True)

        origin = urlsplit(demo_server.base)[:2]
        assert requests
        assert [url for url in requests if urlsplit(url)[:2] != origin] == []


# The header's visible items: how far right each ends, and whether it sits on a line
# below the title's.
HEADER_ITEMS = """() => {
  const title = document.querySelector("body > header h1").getBoundingClientRect();
  return [...document.querySelectorAll("body > header > :not([hidden])")].map((item) => {
    const rect = item.getBoundingClientRect();
    return {right: rect.right, below: rect.top >= title.bottom};
  });
}"""


def test_the_header_wraps_on_a_phone(screen: Browser, demo_server: ApiServer) -> None:
    with open_page(screen, viewport(390)) as page:
        open_dashboard(page, demo_server)
        items = cast(list[dict[str, Any]], page.evaluate(HEADER_ITEMS))
        room = page.evaluate("document.documentElement.clientWidth")
        assert [item for item in items if item["right"] > room] == []
        assert any(item["below"] for item in items), "the header is one line"


def test_the_failures_reason_shows_without_scrolling_at_1024(
    screen: Browser, demo_server: ApiServer
) -> None:
    """The half-width failures panel of a small laptop shows each failure as a card:
    its reason is in view, not behind a horizontal scroll."""
    with open_page(screen, viewport(1024)) as page:
        open_dashboard(page, demo_server)
        reason = cast(dict[str, bool], page.evaluate(REASON))
        assert reason == {"visible": True, "scrolls": False}
        expect(page.locator("#failures tbody tr td.reason").first).to_be_in_viewport()
