/**
 * Webhooks: the URL a job's end is posted to, what is posted, and how it is signed. The
 * signature follows the Standard Webhooks scheme (https://www.standardwebhooks.com), so its
 * libraries verify it: `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`.
 */
import { z } from 'zod';

/** The longest webhook URL accepted. */
export const MAX_WEBHOOK_URL_LENGTH = 2_000;

/** What is wrong with a webhook URL (`must be http or https, not ftp:`), or null when it is fine. */
export function webhookUrlProblem(value: string): string | null {
  if (value.length > MAX_WEBHOOK_URL_LENGTH) return `is ${value.length} characters; at most ${MAX_WEBHOOK_URL_LENGTH} are accepted`;
  let url: URL;
  try { url = new URL(value); } catch { return `is not a URL: ${JSON.stringify(value.slice(0, 100))} (give one like https://example.com/hooks/crowdcompute)`; }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must be http or https, not ${url.protocol}`;
  return null;
}

/**
 * Whether a webhook URL's host is one of `hosts`: a name (`hooks.example.com`, any port), or
 * `*.example.com` for the names under it. No hosts: every host is allowed.
 */
export function webhookHostAllowed(url: string, hosts: readonly string[]): boolean {
  if (hosts.length === 0) return true;
  let host: string;
  try { host = new URL(url).hostname.toLowerCase(); } catch { return false; }
  return hosts.some((h) => {
    const pattern = h.toLowerCase();
    return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern;
  });
}

/** A webhook URL, refused in the words of {@link webhookUrlProblem}. */
export const WebhookUrlSchema = z.string().superRefine((value, ctx) => {
  const problem = webhookUrlProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
  // Examples: a refined string's rule is its own, so generators of valid messages take these.
}).meta({ description: `an http or https URL, at most ${MAX_WEBHOOK_URL_LENGTH} characters`, examples: ['https://example.com/hooks/crowdcompute', 'http://127.0.0.1:9000/done'] });

/** The headers of a delivery (Standard Webhooks). */
export const WEBHOOK_HEADERS = { id: 'webhook-id', timestamp: 'webhook-timestamp', signature: 'webhook-signature' } as const;

/** The only event there is: a job ended (completed, failed or cancelled). */
export const WEBHOOK_EVENT = 'job.finished';

/** What a webhook delivery is doing: being tried, accepted by its receiver (2xx), or given up. */
export const WEBHOOK_DELIVERY_STATES = ['pending', 'delivered', 'failed'] as const;
