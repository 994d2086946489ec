/* global document */
// Sparklines: a polyline in a small inline SVG, scaled to the series' own range.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * SVG polyline points for `values` in a `width` x `height` box, oldest at the left edge and newest at
 * the right; gaps (undefined, NaN) are skipped. A flat series sits in the middle, so "constant" does
 * not look like "zero".
 */
export function sparklinePoints(values, width, height) {
  const known = values.map((v, i) => [i, v]).filter(([, v]) => Number.isFinite(v));
  if (known.length === 0) return '';
  const min = Math.min(...known.map(([, v]) => v));
  const max = Math.max(...known.map(([, v]) => v));
  const slots = Math.max(values.length - 1, 1);
  const pad = 2;
  return known
    .map(([i, v]) => {
      const x = (i / slots) * width;
      const y = max === min ? height / 2 : pad + (1 - (v - min) / (max - min)) * (height - 2 * pad);
      return `${round(x)},${round(y)}`;
    })
    .join(' ');
}

const round = (n) => Math.round(n * 10) / 10;

/** An empty sparkline element, filled by drawSparkline(). */
export function createSparkline(width = 120, height = 28) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  // Stretched to the card's width; the stroke keeps its width (vector-effect in style.css).
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('aria-hidden', 'true');
  const line = document.createElementNS(SVG_NS, 'polyline');
  line.setAttribute('fill', 'none');
  svg.append(line);
  return svg;
}

export function drawSparkline(svg, values) {
  const { width, height } = svg.viewBox.baseVal;
  svg.firstElementChild.setAttribute('points', sparklinePoints(values, width, height));
}
