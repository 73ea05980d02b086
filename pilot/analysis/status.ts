// Writes the analysis of each snapshot into the status.validationMessages of VirtualServices
// and Gateways (Istio's IstioStatus field), only where it changed, through the status
// subresource.
// Writes run one batch at a time off the push path; a snapshot arriving meanwhile is
// analysed once the batch is done (the latest wins).
import type { KubeClient, ResourceRef } from '../../api/kube/index.js';
import type { ConfigInputs } from '../model/inputs.js';
import { analyze, validationMessage } from './analyze.js';

interface StatusHolder { metadata: { name?: string; namespace?: string; generation?: number }; status?: { validationMessages?: unknown[] } }

export class VirtualServiceStatusWriter {
  private running = false;
  private next?: ConfigInputs;
  /** Patches written (for tests and logs). */
  writes = 0;

  constructor(private readonly client: KubeClient, private readonly resource: () => ResourceRef, private readonly domain?: string, private readonly gatewayResource?: () => ResourceRef) {}

  report(inputs: ConfigInputs): void {
    this.next = inputs;
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.next) {
        const inputs = this.next;
        this.next = undefined;
        await this.write(inputs);
      }
    } finally {
      this.running = false;
    }
  }

  private async write(inputs: ConfigInputs): Promise<void> {
    let messages;
    try {
      messages = analyze(inputs, this.domain);
    } catch (e) {
      console.error(`pilot: analysis failed: ${(e as Error).message}`);
      return;
    }
    const byObject = new Map<string, ReturnType<typeof validationMessage>[]>();
    for (const m of messages) {
      const key = `${m.resource.kind}/${m.resource.namespace}/${m.resource.name}`;
      byObject.set(key, [...(byObject.get(key) ?? []), validationMessage(m)]);
    }
    const kinds: [string, StatusHolder[], (() => ResourceRef) | undefined][] = [
      ['VirtualService', inputs.virtualServices as unknown as StatusHolder[], this.resource],
      ['Gateway', (inputs.gateways ?? []) as unknown as StatusHolder[], this.gatewayResource],
    ];
    for (const [kind, objects, resource] of kinds) {
      if (!resource) continue;
      for (const o of objects) {
        const { name, namespace, generation } = o.metadata;
        if (!name || !namespace) continue;
        const want = byObject.get(`${kind}/${namespace}/${name}`) ?? [];
        const have = o.status?.validationMessages ?? [];
        if (JSON.stringify(want) === JSON.stringify(have)) continue;
        try {
          await this.client.patch(resource(), name, namespace, { status: { validationMessages: want.length ? want : null, observedGeneration: generation } }, 'merge', { subresource: 'status' });
          this.writes++;
        } catch (e) {
          // Gone meanwhile, or no status subresource: the next snapshot tries again.
          console.warn(`pilot: ${kind} ${namespace}/${name}: writing status.validationMessages: ${(e as Error).message}`);
        }
      }
    }
  }
}
