/**
 * OpenTelemetry for the CLI's processes (foreman, worker, client commands): when
 * OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, a tracer provider
 * that exports spans in batches by OTLP over HTTP (JSON bodies) to that endpoint, and the
 * context manager that lets a span's context follow async calls. When neither is set nothing is
 * loaded: the library's spans are then the API's no-ops (src/tracing/trace-api.ts).
 *
 * Programs that embed the library register their own provider instead; this file is for the
 * CLI only. docs/operations.md#traces lists the variables.
 * @internal
 */
import { readFileSync } from 'node:fs';
import type { Sampler } from '@opentelemetry/sdk-trace';

/** What the CLI does with its tracer provider: flush before it exits. */
export interface Tracing {
  /** Export what is buffered and stop; safe to call twice. */
  shutdown(): Promise<void>;
}

/** The service name of each kind of process, unless OTEL_SERVICE_NAME says otherwise. */
export const SERVICE_NAMES = { foreman: 'crowdcompute-foreman', worker: 'crowdcompute-worker', client: 'crowdcompute-client' } as const;

/** True when an OTLP endpoint for traces is configured and tracing is not switched off (OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER=none). */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/** A whole number of milliseconds from the environment, or the default when unset or not one. */
function envMs(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && value.trim() !== '' && Number.isInteger(n) && n >= 0 ? n : fallback;
}

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

let active: Tracing | null = null;

/**
 * Install the tracer provider when an endpoint is configured (once per process); null when not.
 * The SDK's modules are loaded only then, so a process that does not trace does not load them.
 */
export async function startTracing(service: keyof typeof SERVICE_NAMES, env: NodeJS.ProcessEnv = process.env): Promise<Tracing | null> {
  if (active) return active;
  if (!tracingConfigured(env)) return null;
  const [api, sdk, { OTLPTraceExporter }, resources, { AsyncLocalStorageContextManager }] = await Promise.all([
    import('@opentelemetry/api'), import('@opentelemetry/sdk-trace'), import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'), import('@opentelemetry/context-async-hooks'),
  ]);
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the defaults (envDetector).
  const resource = resources.resourceFromAttributes({ 'service.name': SERVICE_NAMES[service], 'service.version': PACKAGE_VERSION })
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new sdk.TracerProvider({
    resource,
    sampler: sampler(sdk, env),
    spanProcessors: [new sdk.BatchSpanProcessor({
      exporter: new OTLPTraceExporter(),
      // The OpenTelemetry defaults, which these variables change as the specification says.
      scheduledDelayMillis: envMs(env.OTEL_BSP_SCHEDULE_DELAY, 5_000),
      exportTimeoutMillis: envMs(env.OTEL_BSP_EXPORT_TIMEOUT, 30_000),
      maxQueueSize: envMs(env.OTEL_BSP_MAX_QUEUE_SIZE, 2_048) || 2_048,
      maxExportBatchSize: envMs(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512) || 512,
    })],
  });
  api.trace.setGlobalTracerProvider(provider);
  let stopped: Promise<void> | null = null;
  active = { shutdown: () => (stopped ??= provider.shutdown().catch(() => { /* the collector is unreachable: the spans are lost, the process is not */ })) };
  return active;
}

/** Export what is buffered, if tracing was started; for a process about to exit. */
export async function stopTracing(): Promise<void> {
  await active?.shutdown();
}

/**
 * The sampler OTEL_TRACES_SAMPLER names (always_on, always_off, traceidratio and their
 * parentbased_ forms, with OTEL_TRACES_SAMPLER_ARG as the ratio); default parentbased_always_on:
 * every trace is kept unless the submitter's context says it is not sampled.
 */
function sampler(sdk: typeof import('@opentelemetry/sdk-trace'), env: NodeJS.ProcessEnv): Sampler {
  const name = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase() ?? 'parentbased_always_on';
  const ratio = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
  const base: Sampler = name.endsWith('always_off') ? new sdk.AlwaysOffSampler()
    : name.endsWith('traceidratio') ? new sdk.TraceIdRatioBasedSampler(Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 1)
      : new sdk.AlwaysOnSampler();
  return name.startsWith('parentbased_') || !['always_on', 'always_off', 'traceidratio'].includes(name) ? new sdk.ParentBasedSampler({ root: base }) : base;
}
