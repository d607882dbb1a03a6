// The foreman's dashboard: one page, rendered here, kept live by the foreman's event stream
// (GET /api/events). Paths: / (overview), /jobs, /jobs/<id>, /workers, /workers/<id>,
// /schedules, /schedules/<id>, /failed.
import { html, render, useEffect, useState, useLive, LiveDot, api } from './common.js';
import { Overview } from './dashboard/overview.js';
import { Jobs } from './dashboard/jobs.js';
import { JobPage } from './dashboard/job.js';
import { Workers, WorkerPage } from './dashboard/workers.js';
import { Schedules, SchedulePage } from './dashboard/schedules.js';
import { Failed } from './dashboard/failed.js';
import { Link } from './dashboard/shared.js';

const TITLE = 'CrowdCompute';

/** The page a path shows. */
function route(path) {
  let m;
  if ((m = /^\/jobs\/([^/]+)$/.exec(path))) return { page: 'job', id: decodeURIComponent(m[1]), title: 'Job' };
  if ((m = /^\/workers\/([^/]+)$/.exec(path))) return { page: 'worker', id: decodeURIComponent(m[1]), title: `Worker ${decodeURIComponent(m[1])}` };
  if ((m = /^\/schedules\/([^/]+)$/.exec(path))) return { page: 'schedule', id: decodeURIComponent(m[1]), title: `Schedule ${decodeURIComponent(m[1])}` };
  if (path === '/schedules') return { page: 'schedules', title: 'Schedules' };
  if (path === '/failed') return { page: 'failed', title: 'Failed tasks' };
  if (path === '/jobs') return { page: 'jobs', title: 'Jobs' };
  if (path === '/workers') return { page: 'workers', title: 'Workers' };
  return { page: 'overview', title: 'Overview' };
}

function App() {
  const [path, setPath] = useState(location.pathname);
  const [live, setLive] = useState({ stats: null, workers: [], series: [], jobs: new Map(), jobUpdates: [], jobVersion: 0, workersVersion: 0, recentJobs: [], health: null });

  useEffect(() => {
    const onPop = () => { setPath(location.pathname); scrollTo(0, 0); };
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);

  // The recent jobs and the health: read once, then kept current by the feed.
  useEffect(() => {
    api('/api/jobs?limit=8').then((recentJobs) => setLive((l) => ({ ...l, recentJobs })), () => {});
    const health = () => fetch('/health').then((r) => r.json()).then((h) => setLive((l) => ({ ...l, health: h })), () => {});
    void health();
    const t = setInterval(health, 10_000);
    return () => clearInterval(t);
  }, []);

  const open = useLive('/api/events', (type, data) => setLive((l) => {
    switch (type) {
      case 'stats': return { ...l, stats: data };
      case 'workers': return { ...l, workers: data, workersVersion: l.workersVersion + 1 };
      case 'series': return { ...l, series: data };
      case 'point': {
        const series = l.series.length && l.series[l.series.length - 1].t === data.t ? [...l.series.slice(0, -1), data] : [...l.series.slice(-359), data];
        return { ...l, series };
      }
      case 'jobs': {
        const jobs = new Map(l.jobs);
        for (const j of data) jobs.set(j.id, j);
        if (jobs.size > 2000) for (const k of [...jobs.keys()].slice(0, jobs.size - 2000)) jobs.delete(k);
        let recentJobs = l.recentJobs.map((r) => jobs.get(r.id) ?? r);
        const fresh = data.filter((j) => !recentJobs.some((r) => r.id === j.id) && (!recentJobs.length || j.created_at >= recentJobs[recentJobs.length - 1].created_at));
        if (fresh.length) recentJobs = [...fresh, ...recentJobs].sort((a, b) => b.created_at.localeCompare(a.created_at)).slice(0, 8);
        return { ...l, jobs, jobUpdates: data, jobVersion: l.jobVersion + 1, recentJobs };
      }
      default: return l;
    }
  }));

  const r = route(path);
  useEffect(() => { document.title = `${r.title} · ${TITLE}`; }, [r.title]);
  const nav = [['/', 'Overview', 'overview'], ['/jobs', 'Jobs', 'jobs'], ['/workers', 'Workers', 'workers'], ['/schedules', 'Schedules', 'schedules'], ['/failed', 'Failed', 'failed']];
  return html`
    <header class="top">
      <h1><${Link} href="/">CrowdCompute</${Link}></h1>
      <nav>${nav.map(([href, label, page]) => html`<${Link} href=${href} class=${r.page === page || (page !== 'overview' && r.page === page.slice(0, -1)) ? 'current' : ''}>${label}</${Link}>`)}
        <a href="/docs">API</a></nav>
      <${LiveDot} open=${open} />
      <button class="link small" onClick=${() => fetch('/logout', { method: 'POST' }).then(() => { location.href = '/login'; })}>Log out</button>
    </header>
    <main>
      ${r.page === 'overview' ? html`<${Overview} live=${live} />` : ''}
      ${r.page === 'jobs' ? html`<${Jobs} live=${live} />` : ''}
      ${r.page === 'job' ? html`<${JobPage} key=${r.id} id=${r.id} live=${live} />` : ''}
      ${r.page === 'workers' ? html`<${Workers} live=${live} />` : ''}
      ${r.page === 'worker' ? html`<${WorkerPage} key=${r.id} id=${r.id} live=${live} />` : ''}
      ${r.page === 'schedules' ? html`<${Schedules} live=${live} />` : ''}
      ${r.page === 'schedule' ? html`<${SchedulePage} key=${r.id} id=${r.id} live=${live} />` : ''}
      ${r.page === 'failed' ? html`<${Failed} live=${live} />` : ''}
    </main>`;
}

render(html`<${App} />`, document.getElementById('app'));
