// What every page shares: rendering (Preact with htm: templates are tagged, so every value is
// escaped by the DOM, never pasted into HTML), formatting, API calls and a live connection
// that reconnects by itself.
import { h, render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import htm from 'htm';

export const html = htm.bind(h);
export { render, useEffect, useMemo, useRef, useState };

/** "3 s", "4 min", "2 h", "5 d". */
export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const s = Math.abs(ms) / 1000;
  if (s < 1) return `${Math.round(Math.abs(ms))} ms`;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Number((s / 3600).toFixed(s < 36000 ? 1 : 0))} h`;
  return `${Number((s / 86400).toFixed(1))} d`;
}

/** How long ago an ISO time was: "4 min ago". */
export function age(iso, now = Date.now()) {
  return iso ? `${duration(now - Date.parse(iso))} ago` : '–';
}

/** 1536 → "1.5 KiB". */
export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** 12345 → "12,345". */
export const num = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));

/** A value as readable JSON, cut to a length a table can show. */
export function preview(v, max = 400) {
  if (v === undefined) return '';
  const s = typeof v === 'string' ? v : JSON.stringify(v, null, 2);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function cookie(name) {
  return document.cookie.split('; ').find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1);
}

/** A JSON API call; changes carry the session's CSRF token. Throws with the server's message. */
export async function api(path, options = {}) {
  const headers = { accept: 'application/json', ...(options.body ? { 'content-type': 'application/json' } : {}) };
  const csrf = cookie('cc_csrf');
  if (csrf && options.method && options.method !== 'GET') headers['x-csrf-token'] = csrf;
  const res = await fetch(path, { ...options, headers: { ...headers, ...options.headers } });
  if (res.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`; throw new Error('not logged in'); }
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error(data?.message ?? `${res.status} ${res.statusText}`);
  return data;
}

/**
 * A live feed: server-sent events or a WebSocket, reopened with growing pauses when it drops.
 * `onMessage(type, data)` gets each event; the returned hook state says whether it is open.
 */
export function useLive(url, onMessage, kind = 'sse') {
  const [open, setOpen] = useState(false);
  const handler = useRef(onMessage);
  handler.current = onMessage;
  useEffect(() => {
    let stopped = false;
    let source = null;
    let delay = 500;
    let timer = null;
    const connect = () => {
      if (stopped) return;
      if (kind === 'sse') {
        source = new EventSource(url);
        source.onopen = () => { delay = 500; setOpen(true); };
        source.onmessage = (e) => { const m = JSON.parse(e.data); handler.current(m.type, m.data); };
        source.onerror = () => { setOpen(false); source.close(); retry(); };
      } else {
        source = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${url}`);
        source.onopen = () => { delay = 500; setOpen(true); };
        source.onmessage = (e) => { const m = JSON.parse(e.data); handler.current(m.type, m.data); };
        source.onclose = () => { setOpen(false); retry(); };
      }
    };
    const retry = () => {
      if (stopped || timer) return;
      timer = setTimeout(() => { timer = null; connect(); }, delay);
      delay = Math.min(delay * 2, 10_000);
    };
    connect();
    return () => { stopped = true; clearTimeout(timer); source?.close(); };
  }, [url, kind]);
  return open;
}

/** A state as a coloured badge. */
export const State = ({ state }) => html`<span class=${`state ${state}`}>${state}</span>`;

/**
 * Completed, failed and cancelled parts of a bar; then, lighter, how far running work has come
 * by its handlers' reports (`live`, in tasks: 1.5 = one and a half tasks' worth).
 */
export function Progress({ total, completed, failed = 0, cancelled = 0, live = 0 }) {
  const part = (n) => (total > 0 ? `${(100 * n) / total}%` : '0%');
  const done = completed + failed + cancelled;
  const label = total > 0 ? `${Math.floor((100 * Math.min(total, done + live)) / total)}%` : '–';
  return html`<span class="progress" title=${`${completed} completed, ${failed} failed, ${cancelled} cancelled of ${total}`}>
    <span class="track"><i class="ok" style=${{ width: part(completed) }}></i><i class="bad" style=${{ width: part(failed) }}></i><i class="cancel" style=${{ width: part(cancelled) }}></i><i class="live" style=${{ width: part(live) }}></i></span>
    <span class="small">${label}</span></span>`;
}

/** The dot and word in the header that say whether the page is live. */
export const LiveDot = ({ open }) => html`<span class="live"><span class=${`dot ${open ? 'on' : 'off'}`}></span>${open ? 'live' : 'reconnecting…'}</span>`;
