"""Accessibility checks for browser tests: axe-core (vendored for tests only, tickets/tests/vendor/README) and
WCAG contrast ratios read from the styles Chromium computed, so a failure names what a person must fix.

- ``axe_violations(page)``: axe's violations of impact "serious" or "critical" on the page as it is now.
- ``contrast_of(page, selector)``: the contrast ratio of the first matching element's text against the
  background it is drawn on (the nearest ancestor with an opaque-enough background colour).
- ``use_theme(context, theme)``: the admin's theme toggle state ("light", "dark", "auto") before any page loads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from playwright.sync_api import BrowserContext, Page

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"  # axe-core 4.14.1, vendor/README
BLOCKING_IMPACTS = ("serious", "critical")

_RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => ["serious", "critical"].includes(v.impact))
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary}))}));
}"""

# WCAG 2.x relative luminance and contrast; the background is composed over the ancestors' backgrounds
# (alpha-blended), up to the canvas (white, or the page's colour-scheme canvas: Chromium paints it).
_CONTRAST = """(element) => {
  const parse = (css) => {
    const m = css.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1});
  const layers = [];
  for (let node = element; node; node = node.parentElement) {
    const bg = parse(getComputedStyle(node).backgroundColor);
    if (bg && bg.a > 0) { layers.push(bg); if (bg.a >= 1) break; }
  }
  const dark = matchMedia("(prefers-color-scheme: dark)").matches
    && getComputedStyle(document.documentElement).colorScheme.includes("dark");
  let background = dark ? {r: 18, g: 18, b: 18, a: 1} : {r: 255, g: 255, b: 255, a: 1};
  for (const layer of layers.reverse()) background = over(layer, background);
  const style = getComputedStyle(element);
  const foreground = over(parse(style.color), background);
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const [hi, lo] = [luminance(foreground), luminance(background)].sort((x, y) => y - x);
  return {ratio: (hi + 0.05) / (lo + 0.05), color: style.color,
          background: `rgb(${Math.round(background.r)}, ${Math.round(background.g)}, ${Math.round(background.b)})`,
          text: element.textContent.trim().slice(0, 60)};
}"""


def use_theme(context: BrowserContext, theme: str) -> None:
    """The Django admin keeps its theme toggle in localStorage; set it before the admin's theme.js runs."""
    context.add_init_script(f"try {{ localStorage.setItem('theme', {theme!r}); }} catch (e) {{}}")


def axe_violations(page: Page) -> list[dict]:
    """axe-core's serious and critical violations. The script goes in through the DevTools protocol
    (``evaluate``), which the page's CSP does not apply to: nothing is relaxed for the test."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        source = AXE.read_bytes()
        assert hashlib.sha256(source).hexdigest() == AXE_SHA256, f"{AXE} is not the axe-core its README names"
        page.evaluate(source.decode())
    return page.evaluate(_RUN_AXE)


def describe(violations: dict[str, list[dict]]) -> str:
    """One line per failing node, grouped by page: what to fix and where (the CSS selector axe gives)."""
    lines = []
    for where, found in violations.items():
        for v in found:
            lines.append(f"{where}: [{v['impact']}] {v['id']}: {v['help']}")
            lines.extend(f"    {n['target']}\n      {n['summary'].replace(chr(10), ' ')}" for n in v["nodes"])
    return "\n".join(lines)


def contrast_of(page: Page, selector: str) -> dict:
    return page.locator(selector).first.evaluate(_CONTRAST)
