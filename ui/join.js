// The page a person opens to lend this browser to a job: it joins as a worker with the link's
// credential (in the address's fragment, which the browser sends to no server), runs map tasks
// in Web Workers, and says what it is doing. Closing the tab stops it; its tasks go back.
import { html, render, useEffect, useState, duration, num } from './common.js';
import { BrowserWorker, MAX_BROWSER_CONCURRENCY, suggestedCapacity } from '/ui/lib/worker/browser/browser-worker.js';

const credential = decodeURIComponent(location.hash.slice(1));
// A foreman without authentication (--insecure) admits any tab; it says so in the page.
const open = document.querySelector('meta[name="crowdcompute-auth"]')?.getAttribute('content') === 'off';
const foremanUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
// Where Python map functions' interpreter (Pyodide) is served; fetched only when a Python task comes.
const pyodideUrl = document.querySelector('meta[name="crowdcompute-pyodide"]')?.getAttribute('content') ?? undefined;

function Missing() {
  return html`<main class="join"><p class="brand">CrowdCompute</p><section class="join-card">
    <h1>Lend this browser</h1>
    <p>This page runs pieces of computing jobs in your browser while it is open. It needs a join link
    from the person running the jobs: an address ending in <code>/join#cct_…</code>.</p>
    <p class="muted small">Ask them for one (<code>crowdcompute join-link create</code>, or <b>Lend a browser</b> on their dashboard).</p>
  </section></main>`;
}

function Join() {
  const [worker] = useState(() => new BrowserWorker({ foremanUrl, token: credential || undefined, pyodideUrl, onChange: (s) => setState(s) }));
  const [state, setState] = useState(worker.state);
  const [, tick] = useState(0);
  useEffect(() => {
    // Leave at once when the page goes away: its tasks go back to the queue now, not after a lease.
    const leave = () => worker.leave();
    addEventListener('pagehide', leave);
    worker.start().catch(() => { /* the reason shows in the state */ });
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => { removeEventListener('pagehide', leave); clearInterval(t); };
  }, []);
  const s = state;
  const status = s.stoppedBecause ? 'refused' : s.stopped ? 'stopped' : s.paused ? 'paused' : s.connected ? (s.running > 0 ? 'working' : 'waiting') : 'connecting';
  const words = {
    refused: 'Not admitted', stopped: 'Stopped', paused: 'Paused', working: 'Working', waiting: 'Connected, waiting for work', connecting: 'Connecting…',
  }[status];
  return html`<main class="join"><p class="brand">CrowdCompute</p><section class="join-card" data-status=${status}>
    <h1>Lend this browser</h1>
    <p class="join-status"><span class=${`dot ${status === 'working' || status === 'waiting' ? 'on' : status === 'refused' || status === 'stopped' ? 'off' : ''}`}></span>
      <b data-testid="status">${words}</b></p>
    ${s.stoppedBecause ? html`<div class="notice bad" role="alert">${s.stoppedBecause.replace(/^CC_ERR_[A-Z_]+: /, '')}</div>` : ''}
    <div class="cards">
      <div class="card"><b data-testid="completed">${num(s.completed)}</b><span>tasks done</span></div>
      <div class="card"><b>${duration(s.busyMs)}</b><span>computing time given</span></div>
      <div class="card"><b>${s.running} / ${s.capacity}</b><span>running now</span></div>
    </div>
    <p>${s.currentJob && s.running > 0 ? html`Working on <b data-testid="job">${s.currentJob}</b>.` : html`<span class="muted">No task right now.</span>`}</p>
    <div class="actions">
      ${s.paused
        ? html`<button class="primary" data-testid="resume" disabled=${s.stopped} onClick=${() => worker.resume()}>Resume</button>`
        : html`<button data-testid="pause" disabled=${s.stopped || !s.connected} onClick=${() => worker.pause()}>Pause</button>`}
      <label class="small">Tasks at once
        <select value=${s.capacity} disabled=${s.stopped} onChange=${(e) => worker.setCapacity(Number(e.currentTarget.value))}>
          ${Array.from({ length: MAX_BROWSER_CONCURRENCY }, (_, i) => html`<option value=${i + 1}>${i + 1}${i + 1 === suggestedCapacity(navigator.hardwareConcurrency) ? ' (suggested)' : ''}</option>`)}
        </select></label>
      <button class="danger" data-testid="stop" disabled=${s.stopped} onClick=${() => worker.leave()}>Stop lending</button>
    </div>
    <p class="muted small">The work runs in the background of this tab, apart from this page: it cannot see your other tabs, cookies or files.
      Pause, or close this tab, to stop; anything unfinished goes back to the queue for someone else.
      Lending since ${new Date(s.since).toLocaleTimeString()} as <code>${s.workerId}</code>.</p>
  </section></main>`;
}

render(credential || open ? html`<${Join} />` : html`<${Missing} />`, document.getElementById('app'));
