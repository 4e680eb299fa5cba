"""What every page must pass in the browser: no console errors, no failed requests, fits a phone.

Screenshots of each page, at desktop and phone width, go to the test's
artifact directory; with E2E_UPDATE_SCREENSHOTS=1 the ones the README shows
are copied to docs/screenshots/ as well.
"""

import os
import shutil
from pathlib import Path

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Response

from .processes import ROOT

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
DOCS = ROOT / "docs" / "screenshots"

# The elements that stick out past the viewport (ignoring those a scrolling
# box clips), to name the culprit when a page scrolls sideways.
WIDE_ELEMENTS_JS = """(width) => {
  const clipped = (el) => {
    if (["absolute", "fixed"].includes(getComputedStyle(el).position)) return false;
    for (let box = el.parentElement; box && box !== document.body; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== "visible") return true;
    }
    return false;
  };
  return [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > width + 0.5 && !clipped(el))
    .slice(-5)
    .map((el) => el.tagName.toLowerCase() + (el.className ? "." + el.className : "")
         + " right=" + Math.round(el.getBoundingClientRect().right));
}"""


# Form controls a screen reader could not name.
UNLABELLED_JS = """() => [...document.querySelectorAll(
    "input:not([type=hidden]):not([type=submit]), select, textarea")]
  .filter((el) => !el.labels.length && !el.getAttribute("aria-label")
                  && !el.getAttribute("aria-labelledby"))
  .map((el) => el.outerHTML.slice(0, 120))"""

# How the focused element stands out: its outline, or a box shadow.
FOCUS_STYLE_JS = """() => {
  const el = document.activeElement, style = getComputedStyle(el);
  return {element: el.outerHTML.slice(0, 80), outline: style.outlineStyle === "none" ? 0
          : parseFloat(style.outlineWidth), shadow: style.boxShadow};
}"""

AFTER_NEXT_PAINT_JS = "() => new Promise((done) => requestAnimationFrame(() => setTimeout(done)))"


class BrowserProblems:
    """Collects console errors, uncaught exceptions and failed requests of a browser context.

    Listening on the context covers every page of it, popups included.
    """

    def __init__(self, context: BrowserContext, label: str):
        self.label = label
        self.found: list[str] = []
        context.on("console", self._console)
        context.on("weberror", lambda error: self.found.append(f"uncaught: {error.error}"))
        context.on("requestfailed", self._request_failed)
        context.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            self.found.append(f"console {message.type}: {message.text} ({message.location})")

    def _request_failed(self, request: Request) -> None:
        # Leaving a page cancels the watch page's poll in flight: not a failure.
        if request.failure == "net::ERR_ABORTED" and request.resource_type == "fetch":
            return
        self.found.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.found.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def assert_none(self) -> None:
        found, self.found = self.found, []
        assert not found, f"{self.label}'s browser reported problems:\n" + "\n".join(found)


class Screenshots:
    """Numbered whole-page screenshots, desktop then phone, and the phone-width check."""

    def __init__(self, directory: Path, *, docs=frozenset(), docs_phone=frozenset()):
        """``docs`` and ``docs_phone`` name the shots the README shows, at each width."""
        self.directory = directory
        self.count = 0
        update = os.environ.get("E2E_UPDATE_SCREENSHOTS") == "1"
        self.docs = {"desktop": docs, "phone": docs_phone} if update else {}

    def take(self, page: Page, name: str) -> None:
        self.count += 1
        stem = f"{self.count:02d}-{name}"
        desktop = self.directory / f"{stem}-desktop.png"
        phone = self.directory / f"{stem}-phone.png"
        try:
            self._whole_page(page, desktop, DESKTOP)
            width = self._whole_page(page, phone, PHONE)
            if width > PHONE["width"]:
                page.set_viewport_size(PHONE)
                culprits = page.evaluate(WIDE_ELEMENTS_JS, PHONE["width"])
                raise AssertionError(
                    f"{name} ({page.url}) scrolls sideways at {PHONE['width']} px: "
                    f"scrollWidth={width}; too wide: {culprits}; see {phone}"
                )
        finally:
            page.set_viewport_size(DESKTOP)
        assert_labels_and_focus(page, name)
        for shot, suffix in ((desktop, "desktop"), (phone, "phone")):
            if name in self.docs.get(suffix, ()):
                DOCS.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, DOCS / f"{name}{'-phone' if suffix == 'phone' else ''}.png")

    @staticmethod
    def _whole_page(page: Page, path: Path, viewport: dict) -> int:
        """Screenshot the whole page at ``viewport``'s width; returns the page's scrollWidth.

        The viewport is made as tall as the page rather than using full_page:
        Chromium does not paint cross-origin frames (the sandboxed email) that
        lie below the viewport, so they would come out blank.
        """
        page.set_viewport_size(viewport)
        width, height = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
        )
        page.set_viewport_size(
            {"width": viewport["width"], "height": max(height, viewport["height"])}
        )
        page.evaluate(AFTER_NEXT_PAINT_JS)
        page.screenshot(path=path)
        return width


def assert_labels_and_focus(page: Page, name: str) -> None:
    """Every form control has a label, and the first Tab stop shows it has focus."""
    unlabelled = page.evaluate(UNLABELLED_JS)
    assert not unlabelled, f"{name} ({page.url}) has form controls without a label: {unlabelled}"
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Tab")
    focus = page.evaluate(FOCUS_STYLE_JS)
    assert focus["outline"] >= 2 or focus["shadow"] != "none", (
        f"{name} ({page.url}): no visible focus on the first Tab stop: {focus}"
    )
    page.evaluate("document.activeElement.blur()")
