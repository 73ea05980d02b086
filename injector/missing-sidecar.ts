// Reports pods that should carry a sidecar but do not: their namespace or the pod asks for
// injection, they did not opt out, yet no istio-proxy container is there (typically created
// while the injector was down, or before the namespace was labelled). Each such pod gets a
// Warning Event, a log line naming it, and counts in a gauge, once per pod.
import { Gauge, type Registry } from 'prom-client';
import { Informer, R, type KubeClient, type KubeObject, type Pod } from '../api/kube/index.js';
import { INJECT_ANNOTATION, PROXY_CONTAINER_NAME } from './inject.js';

export const MISSING_SIDECAR_REASON = 'MissingSidecar';

interface Namespace extends KubeObject {}

/** Why the pod should have a sidecar, or undefined when it should not (or has one). */
export function missingSidecarReason(pod: Pod, ns: Namespace | undefined, ignoredNamespaces: string[]): string | undefined {
  const namespace = pod.metadata.namespace ?? '';
  if (ignoredNamespaces.includes(namespace) || pod.spec.hostNetwork) return undefined;
  if (pod.metadata.deletionTimestamp) return undefined;
  const phase = (pod as Pod & { status?: { phase?: string } }).status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return undefined;
  const all = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])];
  if (all.some((c) => c.name === PROXY_CONTAINER_NAME)) return undefined;
  // The label wins over the annotation, as at injection time.
  const label = pod.metadata.labels?.[INJECT_ANNOTATION];
  const explicit = label === 'true' || label === 'false' ? label : pod.metadata.annotations?.[INJECT_ANNOTATION];
  if (explicit === 'false') return undefined;
  if (explicit === 'true') return `the pod asks for injection (${INJECT_ANNOTATION}: "true")`;
  if (ns?.metadata.labels?.['istio-injection'] === 'enabled') return `namespace ${namespace} has istio-injection=enabled`;
  return undefined;
}

export interface MissingSidecarOptions {
  client: KubeClient;
  ignoredNamespaces: () => string[];
  registry: Registry;
  log: (msg: string) => void;
}

export class MissingSidecarReporter {
  private readonly pods: Informer<Pod>;
  private readonly namespaces: Informer<Namespace>;
  /** Pod UID -> pod key, for the pods currently missing their sidecar. */
  private readonly missing = new Map<string, string>();
  private readonly gauge: Gauge;

  constructor(private readonly opts: MissingSidecarOptions) {
    this.gauge = new Gauge({ name: 'trellis_injector_pods_missing_sidecar', help: 'Pods that should carry a sidecar (namespace or pod asks for injection) but have none', registers: [opts.registry] });
    this.pods = new Informer<Pod>(opts.client, R.pods);
    this.namespaces = new Informer<Namespace>(opts.client, R.namespaces);
  }

  /** Keys (namespace/name) of the pods now missing their sidecar. */
  get missingPods(): string[] {
    return [...this.missing.values()].sort();
  }

  private check(pod: Pod): void {
    const uid = pod.metadata.uid ?? `${pod.metadata.namespace}/${pod.metadata.name}`;
    const reason = missingSidecarReason(pod, this.namespaces.get(pod.metadata.namespace ?? ''), this.opts.ignoredNamespaces());
    if (!reason) {
      if (this.missing.delete(uid)) this.gauge.set(this.missing.size);
      return;
    }
    if (this.missing.has(uid)) return;
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    this.missing.set(uid, key);
    this.gauge.set(this.missing.size);
    const message = `pod ${key} should carry a sidecar (${reason}) but has no ${PROXY_CONTAINER_NAME} container; it was probably created while the injector was unavailable: delete it (or restart its workload) to inject it`;
    this.opts.log(message);
    void this.recordEvent(pod, message);
  }

  private async recordEvent(pod: Pod, message: string): Promise<void> {
    const now = new Date().toISOString();
    try {
      await this.opts.client.create(R.events, {
        metadata: { generateName: `${pod.metadata.name}.`, namespace: pod.metadata.namespace },
        involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid },
        type: 'Warning', reason: MISSING_SIDECAR_REASON, message,
        source: { component: 'trellis-injector' }, reportingComponent: 'trellis-injector',
        firstTimestamp: now, lastTimestamp: now, count: 1,
      } as KubeObject);
    } catch (e) {
      this.opts.log(`event for pod ${pod.metadata.namespace}/${pod.metadata.name}: ${(e as Error).message}`);
    }
  }

  async start(): Promise<void> {
    // Namespaces first, so the first pass over pods sees their labels.
    this.namespaces.on({
      add: () => this.recheckAll(),
      update: (o, n) => { if (o.metadata.labels?.['istio-injection'] !== n.metadata.labels?.['istio-injection']) this.recheckAll(); },
    }).start();
    await this.namespaces.waitForSync();
    this.pods.on({
      add: (p) => this.check(p),
      update: (_o, p) => this.check(p),
      delete: (p) => { if (this.missing.delete(p.metadata.uid ?? '')) this.gauge.set(this.missing.size); },
    }).start();
    await this.pods.waitForSync();
  }

  private recheckAll(): void {
    if (this.pods.hasSynced) for (const p of this.pods.list()) this.check(p);
  }

  stop(): void {
    this.pods.stop();
    this.namespaces.stop();
  }
}
