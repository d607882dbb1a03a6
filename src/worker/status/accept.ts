/**
 * Content negotiation for the status server's `GET /`: a browser gets the page, everything
 * else (curl, scripts, health checkers, the SDK) keeps getting JSON.
 */

/** The quality an Accept header gives `type` (`text/html`), by its most specific matching range; 0 when none matches. */
function quality(ranges: { type: string; sub: string; q: number }[], type: string): number {
  const [t, s] = type.split('/');
  let best = -1;
  let q = 0;
  for (const r of ranges) {
    const specificity = r.type === t && r.sub === s ? 2 : r.type === t && r.sub === '*' ? 1 : r.type === '*' && r.sub === '*' ? 0 : -1;
    if (specificity > best) {
      best = specificity;
      q = r.q;
    }
  }
  return q;
}

/**
 * True when an Accept header prefers `text/html` to `application/json` strictly. A tie (a bare
 * wildcard, no header, both listed alike) keeps JSON, which is what every client got before the page
 * existed.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const ranges = accept.split(',').map((part) => {
    const [range, ...params] = part.trim().toLowerCase().split(';');
    const [type = '', sub = ''] = range.trim().split('/');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    return { type, sub, q: Number.isFinite(q) ? q : 0 };
  }).filter((r) => r.type && r.sub);
  return quality(ranges, 'text/html') > quality(ranges, 'application/json');
}
