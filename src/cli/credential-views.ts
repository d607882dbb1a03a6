/**
 * How `key list`, `token list` and `join-link list` show credentials: a table for people, and
 * with `--json` one object per credential in snake_case, as the REST API names fields. Never a
 * secret: the store holds only hashes.
 */
import type { CredentialRecord } from '../store/store.ts';
import { relativeTime, table } from './views.ts';

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** A credential for scripts (`--json`): what each kind has, snake_case, times in ISO 8601. */
export function credentialJson(r: CredentialRecord): Record<string, unknown> {
  return {
    id: r.id, kind: r.kind, name: r.name,
    ...(r.kind === 'key' ? { scopes: r.scopes, max_concurrency: r.maxConcurrency, webhook_url: r.webhookUrl }
      : r.kind === 'join' ? { expires_at: iso(r.expiresAt), max_workers: r.maxWorkers }
        : { worker_id: r.workerId }),
    created_at: iso(r.createdAt), revoked_at: iso(r.revokedAt), last_used_at: iso(r.lastUsedAt), last_used_from: r.lastUsedFrom,
  };
}

/** `active`, `revoked 2 days ago`, `expired 3 hours ago`. */
function state(r: CredentialRecord, now: number): string {
  if (r.revokedAt !== null) return `revoked ${relativeTime(iso(r.revokedAt), now)}`;
  if (r.expiresAt !== null && r.expiresAt <= now) return `expired ${relativeTime(iso(r.expiresAt), now)}`;
  return 'active';
}

/** `5 minutes ago from 127.0.0.1`, `never`. */
function lastUsed(r: CredentialRecord, now: number): string {
  if (r.lastUsedAt === null) return 'never';
  return `${relativeTime(iso(r.lastUsedAt), now)}${r.lastUsedFrom ? ` from ${r.lastUsedFrom}` : ''}`;
}

/** The table of one kind of credential, newest first as the store lists them. */
export function credentialsTable(kind: CredentialRecord['kind'], records: CredentialRecord[], now = Date.now(), tty?: boolean): string {
  if (records.length === 0) return `no ${{ key: 'API keys', token: 'worker tokens', join: 'join links' }[kind]}\n`;
  const name = (r: CredentialRecord) => r.name ?? '-';
  if (kind === 'key') {
    return table(['ID', 'NAME', 'SCOPES', 'MAX RUNNING', 'CREATED', 'LAST USED', 'STATE'], records.map((r) => [
      r.id, name(r), r.scopes.join(','), r.maxConcurrency ?? '-', relativeTime(iso(r.createdAt), now), lastUsed(r, now), state(r, now)]), tty);
  }
  if (kind === 'token') {
    return table(['ID', 'NAME', 'WORKER', 'CREATED', 'LAST USED', 'STATE'], records.map((r) => [
      r.id, name(r), r.workerId === '*' ? '* (any)' : r.workerId ?? '-', relativeTime(iso(r.createdAt), now), lastUsed(r, now), state(r, now)]), tty);
  }
  return table(['ID', 'NAME', 'MAX TABS', 'EXPIRES', 'CREATED', 'LAST USED', 'STATE'], records.map((r) => [
    r.id, name(r), r.maxWorkers ?? '-', r.expiresAt === null ? 'never' : relativeTime(iso(r.expiresAt), now), relativeTime(iso(r.createdAt), now),
    lastUsed(r, now), state(r, now)]), tty);
}

/** `2026-12-06 22:40:01 UTC`. */
export function utcTime(t: number): string {
  return new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}
