// Keeps caBundle on every webhook of a webhook configuration (mutating or validating) equal
// to the serving CA of the process that serves it, through the Kubernetes API only.
// Level-triggered: each pass reads the object and patches what differs, so a re-applied
// manifest that drops the caBundle is repaired.
import type { KubeClient } from './client.js';
import { isNotFound } from './errors.js';
import { R, type ResourceRef } from './resources.js';
import type { KubeObject } from './types.js';

interface WebhookConfiguration extends KubeObject {
  webhooks?: { name: string; clientConfig?: { caBundle?: string } }[];
}

type PatchOp = { op: 'test' | 'add'; path: string; value: unknown };

export interface CaBundleReconcilerOptions {
  client: KubeClient;
  /** R.mutatingWebhookConfigurations (default) or R.validatingWebhookConfigurations. */
  resource?: ResourceRef;
  configName: string;
  caCertPem: string;
  log: (msg: string) => void;
  /** Re-check period once in sync. */
  resyncMs?: number;
}

export class CaBundleReconciler {
  private readonly caBundle: string;
  private synced = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly waiters: (() => void)[] = [];
  private lastError = '';
  private readonly resource: ResourceRef;
  private readonly what: string;

  constructor(private readonly opts: CaBundleReconcilerOptions) {
    this.caBundle = Buffer.from(opts.caCertPem).toString('base64');
    this.resource = opts.resource ?? R.mutatingWebhookConfigurations;
    this.what = `${this.resource.kind.toLowerCase()} ${opts.configName}`;
  }

  /** True once caBundle has been set on every webhook (stays true afterwards). */
  get ready(): boolean { return this.synced; }

  waitReady(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  start(): this {
    void this.loop(0);
    return this;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One pass; returns the number of webhooks patched. Throws on API errors. */
  async reconcile(): Promise<number> {
    const { client, configName } = this.opts;
    const config = await client.get<WebhookConfiguration>(this.resource, configName);
    const ops: PatchOp[] = [];
    (config.webhooks ?? []).forEach((w, i) => {
      if (w.clientConfig?.caBundle === this.caBundle) return;
      // The test op makes the patch fail instead of touching the wrong webhook if the list changed.
      ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: w.name });
      ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: this.caBundle });
    });
    if (ops.length > 0) await client.patch(this.resource, configName, undefined, ops, 'json');
    return ops.length / 2;
  }

  private async loop(attempt: number): Promise<void> {
    if (this.stopped) return;
    let delay: number;
    try {
      const patched = await this.reconcile();
      if (patched > 0) this.opts.log(`${this.what}: set caBundle on ${patched} webhook(s)`);
      if (!this.synced) {
        this.synced = true;
        this.waiters.splice(0).forEach((w) => w());
      }
      this.lastError = '';
      attempt = 0;
      delay = this.opts.resyncMs ?? 10_000;
    } catch (e) {
      const msg = isNotFound(e)
        ? `${this.what} not found yet`
        : `${this.what}: ${e instanceof Error ? e.message : String(e)}`;
      // Log a repeated failure once, not every retry.
      if (msg !== this.lastError) this.opts.log(`${msg}; retrying`);
      this.lastError = msg;
      attempt++;
      delay = Math.min(250 * 2 ** Math.min(attempt, 5), 5_000);
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.loop(attempt), delay);
    this.timer.unref();
  }
}
