/**
 * A hand-written SVG line chart, two panels side by side sharing the x axis (pods): etcd
 * Authenticate calls (log scale) and heartbeat success (%) for each design. No chart dependency.
 */
export interface Series {
  name: string;
  color: string;
  /** SVG stroke-dasharray, so overlapping lines stay visible (e.g. two designs both at 100 %). */
  dash?: string;
  points: Array<{ x: number; y: number }>;
}

export interface Panel {
  title: string;
  yLabel: string;
  scale: 'log' | 'percent';
  series: Series[];
}

const W = 460;
const H = 330;
const M = { left: 64, right: 18, top: 40, bottom: 52 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (n: number) => (n >= 10_000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1).replace(/\.0$/, '')}k` : String(Math.round(n * 10) / 10));

function panelSvg(panel: Panel, xs: number[], offsetX: number): string {
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const lx = (x: number) => Math.log10(x);
  const [xMin, xMax] = [lx(Math.min(...xs)) - 0.12, lx(Math.max(...xs)) + 0.12];
  const px = (x: number) => M.left + ((lx(x) - xMin) / (xMax - xMin)) * plotW;
  const all = panel.series.flatMap((s) => s.points.map((p) => p.y));
  // Headroom above the largest value, so its label stays inside the panel.
  const logTop = Math.max(1, Math.ceil(Math.log10(Math.max(10, ...all) * 1.5)));
  const py = (y: number) =>
    panel.scale === 'percent' ? M.top + plotH - (Math.max(0, Math.min(100, y)) / 100) * plotH : M.top + plotH - (Math.log10(Math.max(1, y)) / logTop) * plotH;

  const out: string[] = [`<g transform="translate(${offsetX},0)">`];
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(panel.title)}</text>`);
  // Grid and y ticks.
  const ticks = panel.scale === 'percent' ? [0, 25, 50, 75, 100] : Array.from({ length: logTop + 1 }, (_, i) => 10 ** i);
  for (const t of ticks) {
    const y = py(t);
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${M.left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${panel.scale === 'percent' ? `${t} %` : fmt(t)}</text>`);
  }
  for (const x of xs) {
    out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${M.top}" y2="${M.top + plotH}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${px(x)}" y="${M.top + plotH + 16}" text-anchor="middle" font-size="11">${x}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${M.left + plotW / 2}" y="${H - 14}" text-anchor="middle" font-size="12">pods (log scale)</text>`);
  out.push(
    `<text transform="translate(16,${M.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(panel.yLabel)}</text>`,
  );
  // Series: line, markers, value labels. Drawn last-first, so the first series' line ends up on top.
  const n = panel.series.length;
  [...panel.series].reverse().forEach((s, ri) => {
    const si = n - 1 - ri;
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2.5"${dash} points="${pts.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) {
      out.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="4" fill="${s.color}"/>`);
      const label = panel.scale === 'percent' ? `${Math.round(p.y * 10) / 10} %` : fmt(p.y);
      // Labels stack per series; near the top of a percent panel they go below the point.
      const dy = panel.scale === 'percent' ? (p.y > 80 ? 16 + si * 11 : -8 - si * 11) : -8;
      out.push(`<text x="${px(p.x).toFixed(1)}" y="${(py(p.y) + dy).toFixed(1)}" text-anchor="middle" font-size="10" fill="${s.color}">${label}</text>`);
    }
  });
  out.push('</g>');
  return out.join('\n');
}

export function renderChart(title: string, subtitle: string, xs: number[], panels: Panel[]): string {
  const width = W * panels.length;
  const height = H + 60;
  const legend = panels[0].series
    .map(
      (s, i) =>
        `<g transform="translate(${20 + i * 260},${H + 36})"><line x1="0" x2="26" y1="7" y2="7" stroke="${s.color}" stroke-width="3"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>` +
        `<text x="32" y="12" font-size="12">${esc(s.name)}</text></g>`,
    )
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<title>${esc(title)}</title>`,
    ...panels.map((p, i) => panelSvg(p, xs, i * W)),
    `<text x="${width / 2}" y="${H + 6}" text-anchor="middle" font-size="11" fill="#555">${esc(subtitle)}</text>`,
    legend,
    '</svg>',
    '',
  ].join('\n');
}
