"""Measurements the layout tests share: what the browser shows of a page's tables, controls and cards.

``cut(page)`` answers every element a person cannot fully see without scrolling sideways: a table header,
a table cell holding a control (an action column), a control of the page (filters, buttons) outside its
nearest clipping box (an ``overflow`` ancestor) or the viewport; a button whose label is clipped; a
select whose chosen text is wider than the room its box leaves for it; a card whose content is wider than
the card; and a page that scrolls sideways. Each finding names the element, so a failure says where.
"""

from __future__ import annotations

CUT = r"""(scope) => {
  const root = document.querySelector(scope) || document.body;
  const vw = document.documentElement.clientWidth;
  const found = [];
  const name = (el) => el.outerHTML.replace(/\s+/g, " ").slice(0, 140);
  const shown = (el) => {
    const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden";
  };
  const clipOf = (el) => {
    let left = 0, right = vw;
    for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      if (getComputedStyle(a).overflowX === "visible") continue;
      const r = a.getBoundingClientRect();
      left = Math.max(left, r.left + a.clientLeft);
      right = Math.min(right, r.left + a.clientLeft + a.clientWidth);
    }
    return {left, right};
  };
  const inside = (el, what) => {
    const r = el.getBoundingClientRect(), c = clipOf(el);
    if (r.left < c.left - 1 || r.right > c.right + 1)
      found.push({what, el: name(el), left: Math.round(r.left), right: Math.round(r.right),
                  clip: [Math.round(c.left), Math.round(c.right)]});
  };
  const ctx = document.createElement("canvas").getContext("2d");
  const textWidth = (el, text) => {
    const s = getComputedStyle(el);
    ctx.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
    return ctx.measureText(text).width;
  };
  const controls = "a[href], button, select, input:not([type=hidden]), textarea";
  root.querySelectorAll("table").forEach((table) => {
    if (!shown(table)) return;
    table.querySelectorAll("th").forEach((th) => shown(th) && inside(th, "table header"));
    table.querySelectorAll("td").forEach((td) => {
      if (shown(td) && td.querySelector(controls)) inside(td, "action cell");
    });
  });
  root.querySelectorAll(controls).forEach((el) => {
    if (!shown(el)) return;
    if (el.tagName !== "A") inside(el, "control");
    if (el.tagName === "BUTTON" && el.scrollWidth > el.clientWidth + 1)
      found.push({what: "button label clipped", el: name(el), scroll: el.scrollWidth, client: el.clientWidth});
    if (el.tagName === "SELECT" && el.selectedIndex >= 0) {
      const s = getComputedStyle(el);
      // Chromium draws the drop-down arrow inside the padding box: 20 px kept for it.
      const room = el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight) - 20;
      const text = el.options[el.selectedIndex].text;
      const width = textWidth(el, text);
      if (width > room + 0.5) found.push({what: "select text cut", el: name(el), text, width: Math.round(width), room});
    }
  });
  root.querySelectorAll(".card").forEach((card) => {
    if (shown(card) && card.scrollWidth > card.clientWidth + 1)
      found.push({what: "card content wider than the card", el: name(card),
                  scroll: card.scrollWidth, client: card.clientWidth});
  });
  if (document.documentElement.scrollWidth > vw)
    found.push({what: "page scrolls sideways", scroll: document.documentElement.scrollWidth, view: vw});
  return found;
}"""


def cut(page, scope: str = "main") -> list[dict]:
    """Everything inside ``scope`` (a CSS selector) that is cut at the page's current width."""
    return page.evaluate(CUT, scope)


SVG_TEXT_PX = """(svg) => {
  const scale = svg.getScreenCTM().a;  // the SVG's user unit in screen pixels
  return Array.from(svg.querySelectorAll("text")).map((t) => ({
    text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * scale}));
}"""


def svg_text_px(svg) -> list[dict]:
    """The size each text of an SVG (a locator) is drawn at on screen, in CSS pixels."""
    return svg.evaluate(SVG_TEXT_PX)


def small_svg_text(svg, minimum: float = 11) -> list[dict]:
    """The texts of an SVG drawn smaller than ``minimum`` pixels."""
    return [t for t in svg_text_px(svg) if t["px"] < minimum - 0.01]
