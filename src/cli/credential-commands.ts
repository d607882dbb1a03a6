import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { SCOPES, joinUrl, webhookUrlProblem } from '../protocol/index.ts';
import { FOREMAN_DEFAULTS } from '../foreman/foreman-options.ts';
import { parseDuration, parseIntArg, within } from './parse-args.ts';
import { JOB_LIMITS, UNITS } from '../protocol/index.ts';

const databaseOption = (cmd: Command) => cmd
  // The environment variable is named, never its value, in --help: it may hold a password.
  .addOption(new Option('-d, --database <url>', 'the foreman\'s store: sqlite:<file> or postgres://…').env('CROWDCOMPUTE_DATABASE').default(FOREMAN_DEFAULTS.database))
  .option('--secret-file <path>', 'file holding the deployment\'s secret (env CROWDCOMPUTE_SECRET; default: the local credentials file)');

const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

/** The secret given on the command line or in the environment, if any. */
export function givenSecret(secretFile: string | undefined): string | undefined {
  if (secretFile) return readFileSync(secretFile, 'utf8').trim();
  return process.env.CROWDCOMPUTE_SECRET || undefined;
}

/**
 * Open the store and a credential service on it, run `fn`, close. Worker tokens need the
 * deployment's secret: given, or the local credentials file's; with neither, a new secret is
 * made and saved there (a foreman started later on this machine finds it).
 */
async function withCredentials(o: { database: string; secretFile?: string }, needsSecret: boolean,
  fn: (svc: import('../foreman/auth/credential-service.ts').CredentialService) => Promise<void>): Promise<void> {
  const { openStore, canonicalDatabaseUrl } = await import('../store/open-store.ts');
  const { CredentialService } = await import('../foreman/auth/credential-service.ts');
  const { newSecret } = await import('../foreman/auth/secrets.ts');
  const local = await import('../host/local-credentials.ts');
  const database = canonicalDatabaseUrl(o.database);
  if (!database) throw new Error('credentials live in a database file or server; an in-memory store has none to manage');
  const store = await openStore(o.database);
  try {
    let secret: string | null = null;
    if (needsSecret) {
      const saved = local.localCredentialsFor(database);
      secret = givenSecret(o.secretFile) ?? saved?.secret ?? null;
      if (!secret) {
        secret = newSecret();
        local.saveLocalCredentials({ database, urls: [], secret }, { persist: true });
        process.stderr.write(`a new secret for ${database} was saved in ${local.credentialsFile()}; give every foreman of this database the same (CROWDCOMPUTE_SECRET)\n`);
      }
    }
    const svc = new CredentialService(store, secret);
    if (secret) await svc.checkSecret();
    await fn(svc);
  } finally {
    await store.close();
  }
}

const view = (r: import('../store/store.ts').CredentialRecord) => ({
  id: r.id, kind: r.kind, name: r.name, ...(r.kind === 'key' ? { scopes: r.scopes, max_concurrency: r.maxConcurrency, webhook_url: r.webhookUrl } : r.kind === 'join' ? {
    expires_at: r.expiresAt === null ? null : new Date(r.expiresAt).toISOString(), max_workers: r.maxWorkers,
  } : { worker_id: r.workerId }),
  created_at: new Date(r.createdAt).toISOString(), revoked_at: r.revokedAt === null ? null : new Date(r.revokedAt).toISOString(),
  last_used_at: r.lastUsedAt === null ? null : new Date(r.lastUsedAt).toISOString(), last_used_from: r.lastUsedFrom,
});

function parseScopes(v: string): string[] {
  const scopes = v.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || unknown.length) throw new Error(`--scopes takes some of ${SCOPES.join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`);
  return scopes;
}

/** `--webhook`: an http(s) URL, or (where it may be removed) none. */
function webhookArg(allowNone: boolean) {
  return (v: string): string | null => {
    if (allowNone && v === 'none') return null;
    const problem = webhookUrlProblem(v);
    if (problem) throw new Error(`--webhook ${problem}`);
    return v;
  };
}

/** Write a credential's text to a file readable by the user only, or print it. */
function deliver(text: string, out: string | undefined): void {
  if (out) {
    writeFileSync(out, `${text}\n`, { mode: 0o600 });
    process.stderr.write(`written to ${out}\n`);
  } else {
    process.stdout.write(`${text}\n`);
  }
}

/** `crowdcompute key …`, `token …` and `join-link …`: credentials, managed in the database, no foreman needed. */
export function credentialCommands(program: Command): void {
  const key = program.command('key').description('API keys of clients and operators: create (shown once), list, revoke');
  databaseOption(key.command('create')
    .description('Create an API key and print it once (only its hash is stored)')
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`, parseScopes)
    .option('--name <name>', 'what the key is for (shown in lists and logs)')
    .option('--max-concurrency <n>', 'at most this many tasks of this key\'s jobs run at once, on all workers together (default: no cap)', within(parseIntArg, '--max-concurrency', JOB_LIMITS.maxConcurrency))
    .option('--webhook <url>', 'post the end of this key\'s jobs that name no webhook to this http(s) URL, signed (see `crowdcompute webhook secret`)', webhookArg(false))
    .option('--out <file>', 'write the key to this file (mode 0600) instead of printing it'))
    .action(async (o) => {
      await withCredentials(o, false, async (svc) => {
        const issued = await svc.createKey({ scopes: o.scopes, name: o.name ?? null, ...(o.maxConcurrency !== undefined ? { maxConcurrency: o.maxConcurrency } : {}),
          ...(o.webhook ? { webhookUrl: o.webhook } : {}) });
        process.stderr.write(`API key ${issued.record.id} (${issued.record.scopes.join(', ')}) created; it is shown only now\n`);
        deliver(issued.text, o.out);
      });
    });
  databaseOption(key.command('list').description('List API keys (never their secrets)'))
    .action(async (o) => { await withCredentials(o, false, async (svc) => { print((await svc.list('key')).map(view)); }); });
  databaseOption(key.command('limit').description('Set or lift an API key\'s cap on its jobs\' running tasks (running foremen apply it within a second)')
    .argument('<id>', 'the key\'s id (cck_<id>_…, or as listed)')
    .requiredOption('--max-concurrency <n|none>', 'at most this many tasks of its jobs run at once, or none for no cap',
      (v: string) => (v === 'none' ? null : within(parseIntArg, '--max-concurrency', JOB_LIMITS.maxConcurrency)(v))))
    .action(async (id: string, o) => { await withCredentials(o, false, async (svc) => { print(view(await svc.setMaxConcurrency(id.replace(/^cck_/, '').split('_')[0], o.maxConcurrency))); }); });
  databaseOption(key.command('webhook').description('Set or remove an API key\'s webhook: where the end of its jobs that name none is posted (jobs ending from now on)')
    .argument('<id>', 'the key\'s id (cck_<id>_…, or as listed)')
    .argument('<url|none>', 'an http(s) URL, or none to remove it', webhookArg(true)))
    .action(async (id: string, url: string | null, o) => { await withCredentials(o, false, async (svc) => { print(view(await svc.setWebhook(id.replace(/^cck_/, '').split('_')[0], url))); }); });
  databaseOption(key.command('revoke').description('Revoke an API key: refused from now on; foremen close its connections within a second')
    .argument('<id>', 'the key\'s id (cck_<id>_…, or as listed)'))
    .action(async (id: string, o) => { await withCredentials(o, false, async (svc) => { print(view(await svc.revoke(id.replace(/^cck_/, '').split('_')[0]))); }); });

  const webhook = program.command('webhook').description('Webhooks: the secret their signatures are made with');
  databaseOption(webhook.command('secret')
    .description('Print the secret webhook deliveries are signed with (whsec_…, Standard Webhooks): give it to receivers so they can verify them. Derived from the deployment\'s secret: the same on every foreman of the database'))
    .action(async (o) => {
      await withCredentials(o, true, async (svc) => {
        const { webhookSecret } = await import('../foreman/auth/secrets.ts');
        process.stdout.write(`${webhookSecret(svc.deploymentSecret())}\n`);
      });
    });

  const token = program.command('token').description('Worker tokens: create (shown once), list, revoke');
  databaseOption(token.command('create')
    .description('Create a token for a worker id (or * for any) and print it once; workers prove it without sending it')
    .requiredOption('--worker <workerId>', 'the worker id it is for, or * for any worker')
    .option('--name <name>', 'what the token is for')
    .option('--out <file>', 'write the token to this file (mode 0600) instead of printing it')
    .option('--if-missing', 'with --out: do nothing when the file already exists (for set-up scripts run on every start)'))
    .action(async (o) => {
      if (o.ifMissing && o.out && existsSync(o.out)) { process.stderr.write(`${o.out} exists; no new token\n`); return; }
      await withCredentials(o, true, async (svc) => {
        const issued = await svc.createToken({ workerId: o.worker, name: o.name ?? null });
        process.stderr.write(`worker token ${issued.record.id} for ${o.worker === '*' ? 'any worker' : `worker ${o.worker}`} created; it is shown only now\n`);
        deliver(issued.text, o.out);
      });
    });
  databaseOption(token.command('list').description('List worker tokens'))
    .action(async (o) => { await withCredentials(o, false, async (svc) => { print((await svc.list('token')).map(view)); }); });
  const join = program.command('join-link').description('Join links: a browser that opens one lends its tab to map jobs (create, list, revoke)');
  databaseOption(join.command('create')
    .description('Create a join link and print it once: whoever opens it in a browser lends that tab to map jobs until they close it')
    .option('--expires <duration>', 'how long the link works, e.g. 2h, 7d (at most 365d)', within(parseDuration, '--expires', { min: 1, max: 365 * UNITS.DAY, unit: 'ms' }), 86_400_000)
    .option('--max-workers <n>', 'most browser tabs connected with it at once', within(parseIntArg, '--max-workers', { min: 1, max: 100_000 }), 100)
    .option('--name <name>', 'what the link is for (shown in lists)')
    .option('--url <foreman>', 'the foreman\'s address as browsers reach it, e.g. https://compute.example.org (default: the one a foreman on this machine left, else http://localhost:8000)'))
    .action(async (o) => {
      await withCredentials(o, true, async (svc) => {
        const now = Date.now();
        const issued = await svc.createJoinLink({ name: o.name ?? null, expiresAt: now + o.expires, maxWorkers: o.maxWorkers, now });
        const local = await import('../host/local-credentials.ts');
        const { canonicalDatabaseUrl } = await import('../store/open-store.ts');
        const saved = local.localCredentialsFor(canonicalDatabaseUrl(o.database) ?? '');
        const base = o.url ?? saved?.urls.find((u) => /^https?:/.test(u)) ?? 'http://localhost:8000';
        process.stderr.write(`join link ${issued.record.id} created: up to ${o.maxWorkers} tabs at once, until ${new Date(issued.record.expiresAt!).toISOString()}; it is shown only now\n`);
        process.stdout.write(`${joinUrl(base, issued.text)}\n`);
      });
    });
  databaseOption(join.command('list').description('List join links (never their secrets)'))
    .action(async (o) => { await withCredentials(o, false, async (svc) => { print((await svc.list('join')).map(view)); }); });
  databaseOption(join.command('revoke').description('Revoke a join link: tabs connected with it are cut off within a second, and no tab may join with it again')
    .argument('<id>', 'the link\'s id (as listed, or the cct_<id>_… after #)'))
    .action(async (id: string, o) => { await withCredentials(o, false, async (svc) => { print(view(await svc.revoke(id.replace(/^.*#/, '').replace(/^cct_/, '').split('_')[0]))); }); });

  databaseOption(token.command('revoke').description('Revoke a worker token: its connected workers are cut off within a second, and refused from then on')
    .argument('<id>', 'the token\'s id'))
    .action(async (id: string, o) => { await withCredentials(o, false, async (svc) => { print(view(await svc.revoke(id.replace(/^cct_/, '').split('_')[0]))); }); });
}
