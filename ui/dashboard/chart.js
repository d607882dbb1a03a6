// A time chart drawn by uPlot, sized to its container and coloured from the page's theme.
import uPlot from 'uplot';
import { html, useEffect, useRef } from '../common.js';

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/**
 * `data` is uPlot's [[x...], [y1...], [y2...]] with x in seconds; `series` names and colours
 * each y ({ label, color: '--ok' }). Redrawn when the data changes, resized with its box.
 */
export function TimeChart({ data, series, height = 220, yLabel = '' }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const el = box.current;
    const opts = {
      width: el.clientWidth || 600, height,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: css('--muted'), grid: { stroke: css('--line'), width: 1 }, ticks: { stroke: css('--line') } },
        { stroke: css('--muted'), grid: { stroke: css('--line'), width: 1 }, ticks: { stroke: css('--line') }, label: yLabel, size: 50 },
      ],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: css(s.color), width: 2, fill: `${css(s.color)}22`, points: { show: false } }))],
    };
    plot.current = new uPlot(opts, data, el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: el.clientWidth, height }));
    resize.observe(el);
    // The theme can change while the page is open.
    const scheme = matchMedia('(prefers-color-scheme: dark)');
    const redraw = () => { plot.current?.destroy(); plot.current = new uPlot(opts, data, el); };
    scheme.addEventListener('change', redraw);
    return () => { resize.disconnect(); scheme.removeEventListener('change', redraw); plot.current?.destroy(); plot.current = null; };
  }, [series.map((s) => s.label).join(), height]);
  useEffect(() => { plot.current?.setData(data); }, [data]);
  return html`<div class="chart" ref=${box}></div>`;
}
