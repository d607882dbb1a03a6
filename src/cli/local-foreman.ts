/**
 * Which foreman of this machine a command means when it is not told: the one the local
 * credentials file records at `--foreman` (or `CROWDCOMPUTE_URL`, else http://localhost:8000),
 * as the client commands find their key; with no URL given and nothing recorded there, the only
 * foreman the file records, if it records one. Store commands take its database from there,
 * `worker` its WebSocket URL and token.
 */
import { credentialsFile, endpointIdentity, localCredentialsAt, localCredentialsList, type LocalCredentials } from '../host/local-credentials.ts';

/** Where the client commands look for a foreman when none is given. */
export const DEFAULT_FOREMAN_URL = 'http://localhost:8000';

/** A foreman of this machine, as the local credentials file records it. */
export interface LocalForeman {
  entry: LocalCredentials;
  /** Its HTTP URL as recorded (`http://127.0.0.1:8000`), or null when it never listened (an entry made by `token create`). */
  url: string | null;
}

/** `sqlite:/home/me/crowdcompute.db at http://127.0.0.1:8000`, for lists in errors. */
function describe(e: LocalCredentials): string {
  return `${e.database}${e.urls.length ? ` at ${e.urls[0]}` : ''}`;
}

/**
 * The local foreman at `given` (comma-separated URLs, HTTP or WebSocket), or when nothing is
 * given, at http://localhost:8000, else the only one recorded. Throws a one-line error ending in
 * `nextStep` when there is none, or several to choose from.
 */
export function localForeman(given: string | undefined, nextStep: string, options: { needsUrl?: boolean } = {}): LocalForeman {
  const tried = (given ?? DEFAULT_FOREMAN_URL).split(',').map((u) => u.trim()).filter(Boolean);
  for (const u of tried) {
    const entry = localCredentialsAt(u);
    if (!entry) continue;
    const at = endpointIdentity(u);
    return { entry, url: entry.urls.find((x) => endpointIdentity(x) === at) ?? null };
  }
  const file = credentialsFile();
  if (given !== undefined) throw new Error(`no foreman at ${tried.join(', ')} is recorded in ${file} (a foreman started on this machine records itself there): ${nextStep}`);
  const all = localCredentialsList().filter((e) => !options.needsUrl || e.urls.length > 0);
  if (all.length === 1) return { entry: all[0], url: all[0].urls[0] ?? null };
  if (all.length === 0) throw new Error(`no foreman has run on this machine (none is recorded in ${file}): start the foreman first (crowdcompute foreman), or ${nextStep}`);
  throw new Error(`${all.length} foremen are recorded in ${file} (${all.map(describe).join('; ')}) and none at ${DEFAULT_FOREMAN_URL}: choose one with --foreman <url>, or ${nextStep}`);
}
