(sel) => {
  const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const over = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a), b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const background = (el) => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; } }
    let base = {r: 255, g: 255, b: 255, a: 1}; for (let i = layers.length - 1; i >= 0; i--) base = over(layers[i], base); return base; };
  const out = [];
  document.querySelectorAll(sel).forEach((el) => {
    if (!el.offsetParent && getComputedStyle(el).position !== "fixed") return;
    if (!Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim())) return;
    const fg = parse(getComputedStyle(el).color), bg = background(el);
    const c = fg.a < 1 ? over(fg, bg) : fg;
    const L1 = lum(c), L2 = lum(bg), ratio = (Math.max(L1, L2) + 0.05) / (Math.min(L1, L2) + 0.05);
    const s = getComputedStyle(el), px = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
    const needed = px >= 24 || (bold && px >= 18.66) ? 3 : 4.5;  // WCAG AA: large text 3:1, else 4.5:1
    out.push({el: el.tagName + "." + String(el.className).slice(0, 40), text: el.textContent.trim().slice(0, 30),
              ratio: Math.round(ratio * 100) / 100, needed,
              fg: getComputedStyle(el).color, bg: `rgb(${Math.round(bg.r)}, ${Math.round(bg.g)}, ${Math.round(bg.b)})`});
  });
  return out;
}
