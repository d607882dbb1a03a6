// The login page: an API key in, a session cookie out, then on to where the person was going.

/**
 * Where to go after logging in: `next` when it is a path of this site, else the dashboard.
 * Browsers read `/\host`, `/<tab>/host` and `\\host` as another site (they drop tabs and line
 * breaks and take a backslash for a slash), so `next` must start with one `/`, hold no
 * backslash or control character, and still name this origin once resolved.
 */
export function sameOriginPath(next, origin) {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//')) return '/';
  if (/[\\\u0000-\u001f\u007f]/.test(next)) return '/';
  let url;
  try { url = new URL(next, origin); } catch { return '/'; }
  if (url.origin !== origin) return '/';
  return `${url.pathname}${url.search}${url.hash}`;
}

const form = document.getElementById('login');
const error = document.getElementById('error');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  error.textContent = '';
  const res = await fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: document.getElementById('key').value }) });
  if (res.ok) { location.assign(sameOriginPath(new URLSearchParams(location.search).get('next'), location.origin)); return; }
  error.textContent = (await res.json().catch(() => ({}))).message || 'login failed';
});
