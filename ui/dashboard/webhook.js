// A job's webhook: each announcement of its end to its URL, whether the receiver took it, and
// every attempt (when, the answer, how long). Pending deliveries are looked at again every few
// seconds until they are delivered or given up.
import { html, api, duration, useEffect, useState } from '../common.js';

/** The state pill of a delivery, in the colours of the job states it resembles. */
const LOOK = { pending: 'running', delivered: 'completed', failed: 'failed' };
const AGAIN_MS = 3_000;
const ENDED = { completed: 'completed', failed: 'failed', cancelled: 'was cancelled' };

function DeliveryAttempts({ delivery }) {
  if (!delivery.attempt_log.length) return html`<p class="muted small">${delivery.attempts ? 'The first attempt is waiting for an answer.' : 'Not sent yet.'}</p>`;
  return html`<table class="attempts" data-testid="webhook-attempts"><thead><tr><th>#</th><th>sent</th><th>answer</th><th class="num">took</th><th>error</th></tr></thead><tbody>
    ${delivery.attempt_log.map((a) => html`<tr data-attempt=${a.attempt}><td>${a.attempt}</td>
      <td class="small muted">${new Date(a.at).toLocaleTimeString()}</td>
      <td>${a.status === null ? html`<span class="muted">none</span>` : html`<span class=${a.error ? 'state-text failed' : ''}>HTTP ${a.status}</span>`}</td>
      <td class="num small">${duration(a.duration_ms)}</td><td class="small err">${a.error ?? ''}</td></tr>`)}
  </tbody></table>`;
}

/** The job's webhook deliveries, or nothing when it has none and names no webhook. */
export function WebhookDeliveries({ id, job }) {
  const [deliveries, setDeliveries] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let timer = null;
    let gone = false;
    const look = async () => {
      try {
        const list = await api(`/api/jobs/${id}/webhook-deliveries`);
        if (gone) return;
        setDeliveries(list);
        setError(null);
        if (list.some((d) => d.state === 'pending')) timer = setTimeout(look, AGAIN_MS);
      } catch (e) { if (!gone) setError(e.message); }
    };
    void look();
    return () => { gone = true; clearTimeout(timer); };
  }, [id, job.status, job.completed_at]);

  if (!job.webhook_url && !deliveries?.length) return '';
  return html`<section data-testid="webhook">
    <div class="section-head"><h2>Webhook</h2><span class="small muted mono">${job.webhook_url ?? deliveries?.[0]?.url ?? ''}</span></div>
    ${error ? html`<div class="notice bad" role="alert">${error}</div>` : ''}
    ${deliveries && !deliveries.length ? html`<p class="muted small">Its end will be posted here when the job finishes.</p>` : ''}
    ${(deliveries ?? []).map((d) => html`<div class="panel" data-delivery=${d.id} data-state=${d.state}>
      <p><span class=${`state ${LOOK[d.state]}`}>${d.state}</span> <span class="small">the job ${ENDED[d.job_status] ?? d.job_status} · ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}
        ${d.state === 'pending' && d.next_attempt_at ? html` · next by ${new Date(d.next_attempt_at).toLocaleTimeString()}` : ''}
        ${d.finished_at ? html` · ${d.state === 'delivered' ? 'delivered' : 'given up'} ${new Date(d.finished_at).toLocaleTimeString()}` : ''}</span>
        ${job.webhook_url ? '' : html` <span class="small muted mono">${d.url}</span>`}</p>
      <${DeliveryAttempts} delivery=${d} />
    </div>`)}
  </section>`;
}
