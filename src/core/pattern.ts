/**
 * Handler patterns, as in the DistWorker SDK (`math.*`): `*` matches any run of characters
 * (dots included), `?` matches exactly one, everything else matches itself.
 */

const cache = new Map<string, RegExp>();

function toRegExp(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, 's');
    if (cache.size > 10_000) cache.clear();
    cache.set(pattern, re);
  }
  return re;
}

/** True when `type` matches the glob `pattern`. */
export function matchesPattern(pattern: string, type: string): boolean {
  return pattern === type || toRegExp(pattern).test(type);
}

/** True when `type` matches any of `patterns`. */
export function matchesAny(patterns: readonly string[], type: string): boolean {
  for (const p of patterns) if (matchesPattern(p, type)) return true;
  return false;
}

/**
 * Pick the handler pattern for a type: an exact name wins, then the pattern with the longest
 * literal text (so `image.resize.*` beats `image.*`), then registration order.
 */
export function bestPattern(patterns: readonly string[], type: string): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const p of patterns) {
    if (p === type) return p;
    if (!matchesPattern(p, type)) continue;
    const score = p.replace(/[*?]/g, '').length;
    if (score > bestScore) { best = p; bestScore = score; }
  }
  return best;
}
