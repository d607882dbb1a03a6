// The worker's page, served by its status server at GET / to browsers. Everything on it comes
// from the status server's /ws feed, which pushes the whole picture about once a second; the
// page keeps the last picture when the feed drops and says so.
import uPlot from 'uplot';
import { html, render, useEffect, useRef, useState, useLive, duration, bytes, num, LiveDot } from './common.js';

/** The worker's life stage as a badge, coloured with the shared state classes. */
const STATUS_CLASS = { connected: 'online', connecting: 'queued', idle: 'idle', draining: 'draining', stopped: 'stopped' };
const EVENT_CLASS = { connected: 'online', disconnected: 'offline', failed: 'failed', gave_up: 'failed', stopped: 'stopped' };
const EVENT_LABEL = { connected: 'connected', disconnected: 'disconnected', failed: 'failed', gave_up: 'gave up', stopped: 'stopped' };

const Badge = ({ cls, text }) => html`<span class=${`state ${cls}`}>${text}</span>`;

/** "14:03:27", in the viewer's time zone. */
const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

/** "14:05", for the chart's time axis. */
const hhmm = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });

/** A thin bar with a percentage after it (CPU, memory, task progress). */
function Meter({ percent, tone = 'live', label }) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  return html`<span class="progress" style=${{ minWidth: '7rem', width: '100%' }}>
    <span class="track"><i class=${tone} style=${{ width: `${p}%`, opacity: tone === 'live' ? 0.85 : 1 }}></i></span>
    <span class="small" style=${{ minWidth: '3.2em', textAlign: 'right', fontVariantNumeric: 'tabular-nums' }}>${label ?? `${Math.round(p)}%`}</span></span>`;
}

function Card({ value, label, tone }) {
  return html`<div class="card"><b style=${tone ? { color: `var(--${tone})` } : null}>${value}</b><span>${label}</span></div>`;
}

/** Follows the browser's light or dark preference, so the chart can redraw in the right colours. */
function useDark() {
  const query = matchMedia('(prefers-color-scheme: dark)');
  const [dark, setDark] = useState(query.matches);
  useEffect(() => {
    const on = (e) => setDark(e.matches);
    query.addEventListener('change', on);
    return () => query.removeEventListener('change', on);
  }, []);
  return dark;
}

/** Tasks finished per slot as stacked bars: failed at the bottom, completed on top. */
function ThroughputChart({ t }) {
  const box = useRef(null);
  const plot = useRef(null);
  const data = useRef(null);
  const [hover, setHover] = useState(null);
  const dark = useDark();
  data.current = [t.times, t.completed.map((c, i) => c + t.failed[i]), t.failed];

  useEffect(() => {
    const css = getComputedStyle(document.documentElement);
    const v = (name) => css.getPropertyValue(name).trim();
    const axis = { stroke: v('--muted'), grid: { stroke: v('--line'), width: 1 }, ticks: { stroke: v('--line'), width: 1 }, font: '11px system-ui, sans-serif' };
    const bars = uPlot.paths.bars({ size: [0.72, 24, 1] });
    const u = new uPlot({
      width: Math.max(200, box.current.clientWidth), height: 200,
      legend: { show: false },
      cursor: { drag: { x: false, y: false, setScale: false }, points: { show: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] } },
      axes: [
        { ...axis, space: 64, values: (_u, ticks) => ticks.map((x) => hhmm(x * 1000)) },
        { ...axis, size: 36, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000], values: (_u, ticks) => ticks.map((x) => num(x)) },
      ],
      series: [
        {},
        { label: 'completed', stroke: v('--ok'), fill: v('--ok'), width: 0, paths: bars },
        { label: 'failed', stroke: v('--bad'), fill: v('--bad'), width: 0, paths: bars },
      ],
      hooks: {
        setCursor: [(self) => {
          const i = self.cursor.idx;
          setHover(i === null || i === undefined ? null : i);
        }],
      },
    }, data.current, box.current);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, box.current.clientWidth), height: 200 }));
    resize.observe(box.current);
    return () => { resize.disconnect(); u.destroy(); plot.current = null; };
  }, [dark]);

  useEffect(() => { plot.current?.setData(data.current); }, [t]);

  const sum = (a) => a.reduce((x, y) => x + y, 0);
  const at = hover !== null && hover < t.times.length ? hover : null;
  return html`<div>
    <div class="legend small">
      <span><i class="swatch" style=${{ background: 'var(--ok)' }}></i>completed <b>${num(sum(t.completed))}</b></span>
      <span><i class="swatch" style=${{ background: 'var(--bad)' }}></i>failed <b>${num(sum(t.failed))}</b></span>
      <span class="muted readout">${at === null
        ? `per ${t.bucket_seconds} s, last ${Math.round((t.times.length * t.bucket_seconds) / 60)} min`
        : `${clock(new Date(t.times[at] * 1000).toISOString())}: ${t.completed[at]} completed, ${t.failed[at]} failed`}</span>
    </div>
    <div ref=${box} class="chart-box"></div>
  </div>`;
}

function ConnectionPanel({ c, uptime }) {
  return html`<section class="panel">
    <h2 class="panel-title">Connection</h2>
    <dl class="kv">
      <dt>Foreman</dt><dd><code>${c.foreman_url}</code></dd>
      <dt>State</dt><dd>${c.connected ? html`<${Badge} cls="online" text="connected" />` : html`<${Badge} cls="offline" text="not connected" />`}
        ${c.connected && c.foreman_id ? html` <span class="muted small">to ${c.foreman_id}</span>` : null}</dd>
      <dt>Connects</dt><dd>${num(c.connects)} <span class="muted small">(${num(c.reconnects)} ${c.reconnects === 1 ? 'reconnect' : 'reconnects'})</span></dd>
      <dt>Up for</dt><dd>${duration(uptime * 1000)}</dd>
    </dl>
    <h3>Recent changes</h3>
    ${c.history.length === 0 ? html`<p class="muted small">None yet.</p>` : html`<ol class="history">
      ${c.history.map((e) => html`<li key=${e.at + e.kind}>
        <time class="muted small" datetime=${e.at} title=${e.at}>${clock(e.at)}</time>
        <${Badge} cls=${EVENT_CLASS[e.kind] ?? 'idle'} text=${EVENT_LABEL[e.kind] ?? e.kind} />
        <span class="why small">${e.kind === 'connected' ? (e.foreman_id ? `accepted by ${e.foreman_id}` : 'accepted') : (e.reason ?? '')}${e.count > 1 ? ` (×${num(e.count)})` : ''}
          ${e.url !== c.foreman_url ? html` <span class="muted">at ${e.url}</span>` : null}</span>
      </li>`)}
    </ol>`}
  </section>`;
}

function RunningTasks({ tasks, capacity, now }) {
  return html`<section>
    <h2>Running tasks <span class="muted small">${tasks.length} of ${capacity} slots</span></h2>
    ${tasks.length === 0 ? html`<div class="panel muted">Nothing running: the foreman sends work as slots free up.</div>` : html`<div class="table-wrap"><table>
      <thead><tr><th>Task</th><th class="hide-narrow">Job</th><th class="num hide-narrow">Attempt</th><th class="num">Running for</th><th class="progress-col">Progress</th></tr></thead>
      <tbody>
        ${tasks.map((r) => html`<tr key=${r.task_id}>
          <td><div class="task-type">${r.type}</div><code class="id muted" title=${r.task_id}>${r.task_id}</code></td>
          <td class="hide-narrow"><code class="id" title=${r.job_id}>${r.job_id}</code></td>
          <td class="num hide-narrow">${r.attempt}</td>
          <td class="num" title=${r.started_at}>${duration(Date.parse(now) - Date.parse(r.started_at))}</td>
          <td>${r.progress === null ? html`<span class="muted small">–</span>` : html`<${Meter} percent=${r.progress} />`}
            ${r.progress_message ? html`<div class="muted small">${r.progress_message}</div>` : null}</td>
        </tr>`)}
      </tbody>
    </table></div>`}
  </section>`;
}

function MachinePanel({ host, config }) {
  const used = host.memory_total_bytes - host.memory_free_bytes;
  return html`<section class="panel">
    <h2 class="panel-title">Machine</h2>
    <dl class="kv">
      <dt>CPU</dt><dd><${Meter} percent=${host.cpu_percent} tone=${host.cpu_percent > 90 ? 'bad' : 'live'} /><div class="muted small">${host.cpu_cores} cores</div></dd>
      <dt>Memory</dt><dd><${Meter} percent=${host.memory_percent} tone=${host.memory_percent > 90 ? 'bad' : 'live'} /><div class="muted small">${bytes(used)} of ${bytes(host.memory_total_bytes)}</div></dd>
      <dt>This process</dt><dd>${bytes(host.process_rss_bytes)} <span class="muted small">resident, ${bytes(host.process_heap_used_bytes)} heap</span></dd>
      <dt>Handlers</dt><dd>${config.patterns.length === 0 ? html`<span class="muted">none</span>` : config.patterns.map((p) => html`<code key=${p} class="chip">${p}</code>`)}</dd>
      <dt>Shipped code</dt><dd>${config.allow_code ? 'runs map jobs (sandboxed)' : html`<span class="muted">refused</span>`}</dd>
    </dl>
  </section>`;
}

function Page({ data, open }) {
  if (!data) {
    return html`<main><p class="muted">${open ? 'Waiting for the worker…' : 'Connecting to the worker…'}</p></main>`;
  }
  const s = data.stats;
  const c = data.connection;
  const lastDrop = c.history.find((e) => e.kind !== 'connected');
  return html`<main>
    ${!open ? html`<div class="notice bad">Lost contact with this worker's status server; showing what it last sent.</div>` : null}
    ${open && !c.connected ? html`<div class="notice">Not connected to the foreman${lastDrop?.reason ? `: ${lastDrop.reason}` : ''}. ${data.status === 'stopped' ? '' : 'Trying again…'}</div>` : null}
    <div class="cards">
      <${Card} value=${`${num(data.running_tasks.length)} / ${num(data.config.max_concurrent_tasks)}`} label="running / capacity" tone=${data.running_tasks.length > 0 ? 'accent' : null} />
      <${Card} value=${num(s.tasks_completed)} label="completed" tone="ok" />
      <${Card} value=${num(s.tasks_failed)} label="failed" tone=${s.tasks_failed > 0 ? 'bad' : null} />
      <${Card} value=${num(s.tasks_cancelled)} label="cancelled" tone=${s.tasks_cancelled > 0 ? 'warn' : null} />
      <${Card} value=${duration(s.average_execution_time * 1000)} label="average time" />
      <${Card} value=${duration(s.total_execution_time * 1000)} label="total time" />
    </div>
    <div class="grid2 section">
      <section class="panel">
        <h2 class="panel-title">Throughput</h2>
        <${ThroughputChart} t=${data.throughput} />
      </section>
      <${ConnectionPanel} c=${c} uptime=${s.uptime_seconds} />
    </div>
    <${RunningTasks} tasks=${data.running_tasks} capacity=${data.config.max_concurrent_tasks} now=${data.now} />
    <div class="grid2 section">
      <${MachinePanel} host=${data.host} config=${data.config} />
      <section class="panel">
        <h2 class="panel-title">For machines</h2>
        <p class="muted small">The same data as JSON and Prometheus text, for scripts, health checks and scrapers.</p>
        <ul class="links">
          <li><a href="/stats">/stats</a> <span class="muted small">task counts and times</span></li>
          <li><a href="/health">/health</a> <span class="muted small">503 while not connected</span></li>
          <li><a href="/metrics">/metrics</a> <span class="muted small">JSON</span></li>
          <li><a href="/metrics/prometheus">/metrics/prometheus</a> <span class="muted small">Prometheus text</span></li>
        </ul>
      </section>
    </div>
  </main>`;
}

function App() {
  const [data, setData] = useState(null);
  const open = useLive('/ws', (type, d) => { if (type === 'status') setData(d); }, 'ws');
  useEffect(() => { if (data) document.title = `CrowdCompute worker ${data.worker_id}`; }, [data?.worker_id]);
  return html`
    <header class="top">
      <h1>CrowdCompute worker ${data ? html`<span class="worker-id">${data.worker_id}</span>` : null}</h1>
      ${data ? html`<${Badge} cls=${STATUS_CLASS[data.status] ?? 'idle'} text=${data.status} />` : null}
      <${LiveDot} open=${open} />
    </header>
    <${Page} data=${data} open=${open} />`;
}

render(html`<${App} />`, document.getElementById('app'));
