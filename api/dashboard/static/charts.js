// Bar charts drawn as SVG elements: no library, no markup strings, text set as text.

const SVG = "http://www.w3.org/2000/svg";
export const PALETTE = ["#2f6fb0", "#e08a2c", "#3a9a5b", "#b8413d", "#7d5ba6", "#8c6d4f"];

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

function gridLines(root, { left, top, width, height, max, ticks = 4 }) {
  for (let i = 0; i <= ticks; i++) {
    const value = (max * i) / ticks;
    const y = top + height - (height * i) / ticks;
    root.append(svg("line", { x1: left, x2: left + width, y1: y, y2: y, class: "grid-line" }));
    root.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "tick" },
      Number.isInteger(value) ? value : value.toFixed(1)));
  }
}

function legend(root, names, x, y) {
  names.forEach((name, i) => {
    const group = svg("g", { transform: `translate(${x + i * 70},${y})`, class: "legend-item" });
    group.append(svg("rect", { width: 12, height: 12, fill: PALETTE[i % PALETTE.length] }));
    group.append(svg("text", { x: 16, y: 10 }, name));
    root.append(group);
  });
}

// Vertical bars, one per label, each stacked from the series in order.
// series: [{name, values: [number per label]}]
export function stackedBarChart(labels, series, { title } = {}) {
  const left = 48, top = 34, height = 240, bottom = 110;
  const band = Math.max(34, Math.min(72, 760 / Math.max(1, labels.length)));
  const width = band * labels.length;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + s.values[i], 0));
  const max = niceMax(Math.max(0, ...totals));
  const root = svg("svg", {
    viewBox: `0 0 ${left + width + 20} ${top + height + bottom}`,
    role: "img",
    "aria-label": title || "stacked bar chart",
    class: "stacked-bar-chart",
  });
  if (title) root.append(svg("title", {}, title));
  gridLines(root, { left, top, width, height, max });
  labels.forEach((label, i) => {
    const x = left + i * band + band * 0.15;
    let base = top + height;
    series.forEach((s, k) => {
      const h = (height * s.values[i]) / max;
      base -= h;
      if (h > 0) {
        const bar = svg("rect", {
          x, y: base, width: band * 0.7, height: h, fill: PALETTE[k % PALETTE.length],
          class: "bar", "data-series": s.name, "data-label": label,
        });
        bar.append(svg("title", {}, `${label}, ${s.name}: ${s.values[i]}`));
        root.append(bar);
      }
    });
    root.append(svg("text", { x: x + band * 0.35, y: base - 4, "text-anchor": "middle", class: "total" },
      totals[i]));
    const name = svg("text", {
      x: x + band * 0.35, y: top + height + 12, "text-anchor": "end", class: "axis-label",
      transform: `rotate(-40 ${x + band * 0.35} ${top + height + 12})`,
    }, label.length > 22 ? `${label.slice(0, 21)}…` : label);
    name.append(svg("title", {}, label));
    root.append(name);
  });
  legend(root, series.map((s) => s.name), left, 8);
  return root;
}

// Horizontal bars, one per label, with a dashed line at `mean`.
export function barChart(labels, values, { mean, title } = {}) {
  const left = 170, top = 10, row = 26, width = 520;
  const height = row * labels.length;
  const max = niceMax(Math.max(mean || 0, ...values, 0));
  const root = svg("svg", {
    viewBox: `0 0 ${left + width + 60} ${top + height + 30}`,
    role: "img",
    "aria-label": title || "bar chart",
    class: "bar-chart",
  });
  if (title) root.append(svg("title", {}, title));
  labels.forEach((label, i) => {
    const y = top + i * row;
    const w = (width * values[i]) / max;
    root.append(svg("text", { x: left - 8, y: y + row * 0.65, "text-anchor": "end", class: "axis-label" },
      label.length > 24 ? `${label.slice(0, 23)}…` : label));
    root.append(svg("rect", { x: left, y: y + 4, width: w, height: row - 8, fill: PALETTE[0], class: "bar" }));
    root.append(svg("text", { x: left + w + 6, y: y + row * 0.65, class: "total" }, values[i]));
  });
  if (mean !== undefined) {
    const x = left + (width * mean) / max;
    root.append(svg("line", { x1: x, x2: x, y1: top, y2: top + height, class: "mean-line" }));
    root.append(svg("text", { x, y: top + height + 18, "text-anchor": "middle", class: "tick" },
      `mean ${mean.toFixed(1)}`));
  }
  return root;
}
