import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { SCOPES, joinUrl, webhookUrlProblem } from '../protocol/index.ts';
import type { CredentialRecord, Store } from '../store/store.ts';
import type { CredentialService } from '../foreman/auth/credential-service.ts';
import { parseDuration, parseIntArg, within } from './parse-args.ts';
import { JOB_LIMITS, UNITS } from '../protocol/index.ts';
import { openCliStore, storeFlags, type CliStore } from './store-flags.ts';
import { credentialJson, credentialsTable, utcTime } from './credential-views.ts';

const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

/** The flags of every credential command: which store, and the deployment's secret. */
const databaseOption = (cmd: Command, foremanHelp?: string) => storeFlags(cmd, foremanHelp)
  .option('--secret-file <path>', 'file holding the deployment\'s secret (env CROWDCOMPUTE_SECRET; default: the local credentials file)');

/** `--json`, on the commands that print a credential or a list of them. */
const jsonOption = (cmd: Command, what: string) => cmd.option('--json', `print ${what} as JSON, snake_case (for scripts)`);

/** The secret given on the command line or in the environment, if any. */
export function givenSecret(secretFile: string | undefined): string | undefined {
  if (secretFile) return readFileSync(secretFile, 'utf8').trim();
  return process.env.CROWDCOMPUTE_SECRET || undefined;
}

interface CredentialFlags { database?: string; foreman?: string; create?: boolean; secretFile?: string }

/**
 * Open the store and a credential service on it, run `fn`, close. Worker tokens need the
 * deployment's secret: given, or the local credentials file's; with neither, a new secret is
 * made and saved there (a foreman started later on this machine finds it).
 */
async function withCredentials(o: CredentialFlags, needsSecret: boolean,
  fn: (svc: CredentialService, opened: CliStore) => Promise<void>, options: { foremanIsAddress?: boolean } = {}): Promise<void> {
  const { CredentialService } = await import('../foreman/auth/credential-service.ts');
  const { newSecret } = await import('../foreman/auth/secrets.ts');
  const local = await import('../host/local-credentials.ts');
  const opened = await openCliStore(o, options);
  try {
    let secret: string | null = null;
    if (needsSecret) {
      secret = givenSecret(o.secretFile) ?? opened.local?.secret ?? null;
      if (!secret) {
        secret = newSecret();
        local.saveLocalCredentials({ database: opened.database, urls: [], secret }, { persist: true });
        process.stderr.write(`a new secret for ${opened.database} was saved in ${local.credentialsFile()}; give every foreman of this database the same (CROWDCOMPUTE_SECRET)\n`);
      }
    }
    const svc = new CredentialService(opened.store, secret);
    if (secret) await svc.checkSecret();
    await fn(svc, opened);
  } finally {
    await opened.store.close();
  }
}

const KIND_NAME = { key: 'API key', token: 'worker token', join: 'join link' } as const;
const KIND_COMMAND = { key: 'key', token: 'token', join: 'join-link' } as const;
const A_KIND = { key: 'an API key', token: 'a worker token', join: 'a join link' } as const;

/** The credential of this kind with this id, or a one-line error saying what the id is instead. */
async function credentialOfKind(store: Store, kind: CredentialRecord['kind'], id: string): Promise<CredentialRecord> {
  const r = await store.credentialGet(id);
  if (!r) throw new Error(`no ${KIND_NAME[kind]} has the id ${id} in this database: crowdcompute ${KIND_COMMAND[kind]} list shows them`);
  if (r.kind !== kind) throw new Error(`${id} is ${A_KIND[r.kind]}, not ${A_KIND[kind]}: crowdcompute ${KIND_COMMAND[r.kind]} revoke ${id}`);
  return r;
}

/** `revoke` of each kind: revoked now, or already (said so, with when); exit 0 either way. */
function revokeAction(kind: CredentialRecord['kind'], idOf: (arg: string) => string, effect: string) {
  return async (arg: string, o: CredentialFlags & { json?: boolean }) => {
    const id = idOf(arg);
    await withCredentials(o, false, async (svc, { store }) => {
      const before = await credentialOfKind(store, kind, id);
      const r = before.revokedAt !== null ? before : await svc.revoke(id);
      if (o.json) { print(credentialJson(r)); return; }
      process.stdout.write(before.revokedAt !== null
        ? `${KIND_NAME[kind]} ${id} was already revoked on ${utcTime(before.revokedAt)}; nothing changed\n`
        : `${KIND_NAME[kind]} ${id} revoked: ${effect}\n`);
    });
  };
}

/** `list` of each kind: a table, or `--json`. */
function listAction(kind: CredentialRecord['kind']) {
  return async (o: CredentialFlags & { json?: boolean }) => {
    await withCredentials(o, false, async (svc) => {
      const records = await svc.list(kind);
      if (o.json) print(records.map(credentialJson)); else process.stdout.write(credentialsTable(kind, records));
    });
  };
}

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

/** `cck_<id>_<secret>` or `<id>` → `<id>`. */
const keyId = (v: string) => v.replace(/^cck_/, '').split('_')[0];
/** `cct_<id>_<secret>` or `<id>` → `<id>`. */
const tokenId = (v: string) => v.replace(/^cct_/, '').split('_')[0];

/** Join links last a day unless told. */
const JOIN_LINK_TTL_MS = UNITS.DAY;

/**
 * `crowdcompute key …`, `token …` and `join-link …`: credentials, managed in the database, no
 * foreman needed. The database is the local foreman's unless `--database` names another.
 */
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
      await withCredentials(o, false, async (svc, opened) => {
        const issued = await svc.createKey({ scopes: o.scopes, name: o.name ?? null, ...(o.maxConcurrency !== undefined ? { maxConcurrency: o.maxConcurrency } : {}),
          ...(o.webhook ? { webhookUrl: o.webhook } : {}) });
        process.stderr.write(`API key ${issued.record.id} (${issued.record.scopes.join(', ')}) created in ${opened.described}; it is shown only now\n`);
        deliver(issued.text, o.out);
      });
    });
  jsonOption(databaseOption(key.command('list').description('List API keys: id, name, scopes, cap, when created and last used, whether revoked (never their secrets)')), 'them')
    .action(listAction('key'));
  jsonOption(databaseOption(key.command('limit').description('Set or lift an API key\'s cap on its jobs\' running tasks (running foremen apply it within a second)')
    .argument('<id>', 'the key\'s id (cck_<id>_…, or as listed)')
    .requiredOption('--max-concurrency <n|none>', 'at most this many tasks of its jobs run at once, or none for no cap',
      (v: string) => (v === 'none' ? null : within(parseIntArg, '--max-concurrency', JOB_LIMITS.maxConcurrency)(v)))), 'the key')
    .action(async (arg: string, o) => {
      const id = keyId(arg);
      await withCredentials(o, false, async (svc, { store }) => {
        await credentialOfKind(store, 'key', id);
        const r = await svc.setMaxConcurrency(id, o.maxConcurrency);
        if (o.json) { print(credentialJson(r)); return; }
        process.stdout.write(r.maxConcurrency === null ? `API key ${id}: no cap on its running tasks\n` : `API key ${id}: at most ${r.maxConcurrency} tasks of its jobs run at once\n`);
      });
    });
  jsonOption(databaseOption(key.command('webhook').description('Set or remove an API key\'s webhook: where the end of its jobs that name none is posted (jobs ending from now on)')
    .argument('<id>', 'the key\'s id (cck_<id>_…, or as listed)')
    .argument('<url|none>', 'an http(s) URL, or none to remove it', webhookArg(true))), 'the key')
    .action(async (arg: string, url: string | null, o) => {
      const id = keyId(arg);
      await withCredentials(o, false, async (svc, { store }) => {
        await credentialOfKind(store, 'key', id);
        const r = await svc.setWebhook(id, url);
        if (o.json) { print(credentialJson(r)); return; }
        process.stdout.write(url === null ? `API key ${id}: no webhook\n` : `API key ${id}: the end of its jobs that name no webhook is posted to ${url}\n`);
      });
    });
  jsonOption(databaseOption(key.command('revoke').description('Revoke an API key: refused from now on; foremen close its connections within a second')
    .argument('<id>', 'the key\'s id (cck_<id>_…, or as listed)')), 'the key')
    .action(revokeAction('key', keyId, 'refused from now on; foremen close its connections within a second'));

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
      await withCredentials(o, true, async (svc, opened) => {
        const issued = await svc.createToken({ workerId: o.worker, name: o.name ?? null });
        process.stderr.write(`worker token ${issued.record.id} for ${o.worker === '*' ? 'any worker' : `worker ${o.worker}`} created in ${opened.described}; it is shown only now\n`);
        deliver(issued.text, o.out);
      });
    });
  jsonOption(databaseOption(token.command('list').description('List worker tokens: id, name, worker, when created and last used, whether revoked')), 'them')
    .action(listAction('token'));
  jsonOption(databaseOption(token.command('revoke').description('Revoke a worker token: its connected workers are cut off within a second, and refused from then on')
    .argument('<id>', 'the token\'s id')), 'the token')
    .action(revokeAction('token', tokenId, 'its connected workers are cut off within a second'));

  const join = program.command('join-link').description('Join links: a browser that opens one lends its tab to map jobs (create, list, revoke)');
  databaseOption(join.command('create')
    .description('Create a join link and print it once: whoever opens it in a browser lends that tab to map jobs until they close it')
    .addOption(new Option('--expires <duration>', 'how long the link works, e.g. 2h, 7d (at most 365d)')
      .argParser(within(parseDuration, '--expires', { min: 1, max: 365 * UNITS.DAY, unit: 'ms' })).default(JOIN_LINK_TTL_MS, '24h'))
    .option('--max-workers <n>', 'most browser tabs connected with it at once', within(parseIntArg, '--max-workers', { min: 1, max: 100_000 }), 100)
    .option('--name <name>', 'what the link is for (shown in lists)')
    // The flag's old name, kept for scripts written before it was --foreman.
    .addOption(new Option('--url <foreman>').hideHelp()),
  'the foreman\'s address as browsers reach it, e.g. https://compute.example.org (default: the one the local foreman recorded, else http://localhost:8000); when that foreman runs on this machine, its database is the one used')
    .action(async (o, cmd: Command) => {
      // --url given on the command line wins over CROWDCOMPUTE_URL, as --foreman does.
      const foreman: string | undefined = cmd.getOptionValueSource('foreman') === 'cli' ? o.foreman : o.url ?? o.foreman;
      await withCredentials({ ...o, foreman }, true, async (svc, opened) => {
        const now = Date.now();
        const issued = await svc.createJoinLink({ name: o.name ?? null, expiresAt: now + o.expires, maxWorkers: o.maxWorkers, now });
        const base = foreman?.split(',')[0]?.trim() || opened.local?.urls.find((u) => /^https?:/.test(u)) || 'http://localhost:8000';
        process.stderr.write(`join link ${issued.record.id} created in ${opened.described}: up to ${o.maxWorkers} tabs at once, until ${utcTime(issued.record.expiresAt!)}; it is shown only now\n`);
        process.stdout.write(`${joinUrl(base, issued.text)}\n`);
      }, { foremanIsAddress: true });
    });
  jsonOption(databaseOption(join.command('list').description('List join links: id, name, tabs allowed, when they expire, whether revoked (never their secrets)')), 'them')
    .action(listAction('join'));
  jsonOption(databaseOption(join.command('revoke').description('Revoke a join link: tabs connected with it are cut off within a second, and no tab may join with it again')
    .argument('<id>', 'the link\'s id (as listed, or the cct_<id>_… after #)')), 'the link')
    .action(revokeAction('join', (v) => tokenId(v.replace(/^.*#/, '')), 'tabs connected with it are cut off within a second'));
}
