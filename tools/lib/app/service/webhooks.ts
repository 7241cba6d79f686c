/**
 * Webhooks of `service.webhooks`: each event is stored as a delivery per subscribed URL, then sent
 * as JSON with `X-Signet-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` and
 * `X-Signet-Timestamp` (receivers reject old timestamps), retried with exponential backoff until
 * delivered or out of attempts. Deliveries survive a restart (they are records).
 */
import { createHmac } from 'node:crypto';
import { redact } from '../../redact.ts';
import { resolveSecret, type SecretRef } from '../../secrets.ts';
import { newId } from '../../service-store/secrets.ts';
import type { DeliveryRecord } from '../../service-store/types.ts';
import type { Deps } from './deps.ts';

export const MAX_ATTEMPTS = 8;
const FIRST_BACKOFF_MS = 1000;
const TIMEOUT_MS = 10_000;

export function signPayload(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Stores one delivery per webhook subscribed to `event`; the dispatcher sends them. */
export async function emit(d: Deps, event: string, data: Record<string, unknown>): Promise<void> {
  const hooks = d.service.webhooks.filter((w) => (w.events as string[]).includes(event));
  if (!hooks.length) return;
  const now = d.clock();
  for (const h of hooks) {
    const id = newId('dlv');
    const payload = JSON.stringify({ id, event, createdAt: new Date(now).toISOString(), data });
    const rec: DeliveryRecord = {
      id,
      event,
      url: h.url,
      payload,
      attempts: 0,
      state: 'pending',
      lastStatus: null,
      lastError: null,
      nextAt: now,
      createdAt: now,
      deliveredAt: null,
    };
    await d.store.insertDelivery(rec);
  }
  d.wakeWebhooks?.();
}

export class WebhookDispatcher {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  readonly #secrets = new Map<string, string>();

  private readonly d: Deps;

  constructor(d: Deps) {
    this.d = d;
    for (const h of d.service.webhooks)
      this.#secrets.set(
        h.url,
        resolveSecret(h.secret as SecretRef, `service.webhooks[${h.url}].secret`, d.env),
      );
  }

  start(intervalMs = 500): void {
    this.#timer = setInterval(() => this.wake(), intervalMs);
    this.#timer.unref();
    this.wake();
  }

  wake(): void {
    if (this.#stopped || this.#running) return;
    this.#running = this.#tick().finally(() => {
      this.#running = undefined;
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
  }

  async #tick(): Promise<void> {
    const due = await this.d.store.dueDeliveries(this.d.clock());
    for (const dl of due) {
      if (this.#stopped) return;
      await this.#send(dl);
    }
  }

  async #send(dl: DeliveryRecord): Promise<void> {
    const secret = this.#secrets.get(dl.url);
    const ts = Math.floor(this.d.clock() / 1000);
    const attempts = dl.attempts + 1;
    let status: number | null = null;
    let error: string | null = null;
    try {
      const r = await fetch(dl.url, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(TIMEOUT_MS),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'signet-service',
          'x-signet-event': dl.event,
          'x-signet-delivery': dl.id,
          'x-signet-timestamp': String(ts),
          ...(secret ? { 'x-signet-signature': signPayload(secret, ts, dl.payload) } : {}),
        },
        body: dl.payload,
      });
      status = r.status;
      await r.arrayBuffer().catch(() => undefined);
      if (r.status < 200 || r.status >= 300) error = `HTTP ${r.status}`;
    } catch (e) {
      error = redact((e as Error).message);
    }
    if (!error) {
      await this.d.store.updateDelivery(dl.id, {
        attempts,
        state: 'delivered',
        lastStatus: status,
        lastError: null,
        deliveredAt: this.d.clock(),
      });
      return;
    }
    const failed = attempts >= MAX_ATTEMPTS;
    await this.d.store.updateDelivery(dl.id, {
      attempts,
      state: failed ? 'failed' : 'pending',
      lastStatus: status,
      lastError: error,
      nextAt: this.d.clock() + FIRST_BACKOFF_MS * 2 ** (attempts - 1),
    });
    if (failed)
      this.d.log(
        'warn',
        `webhook ${dl.event} to ${new URL(dl.url).origin} failed after ${attempts} attempts`,
      );
  }
}
