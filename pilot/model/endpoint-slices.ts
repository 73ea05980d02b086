// EndpointSlices (discovery.k8s.io/v1) as pilot's endpoint input, with Endpoints as the
// fallback when the API server does not serve slices. Slices are folded into the
// Endpoints shape the service model reads: a service's endpoints are those of every slice
// labelled with its name, keeping the ones whose `ready` condition is true or unset (as
// Kubernetes defines it); not-ready, and terminating ones (ready is false while
// terminating), are left out, as Istio does by default.
import { Informer, R, isNotFound, type Endpoints, type KubeClient, type KubeObject } from '../../api/kube/index.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface EndpointSlice extends KubeObject {
  addressType?: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints?: {
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    targetRef?: { kind: string; name: string; namespace?: string };
  }[] | null;
  ports?: { name?: string; port?: number; protocol?: string }[] | null;
}

/** Every service's slices as one Endpoints object (namespace/name -> Endpoints). */
export function endpointsFromSlices(slices: readonly EndpointSlice[]): Endpoints[] {
  const byService = new Map<string, Endpoints>();
  for (const slice of slices) {
    const name = slice.metadata.labels?.[SERVICE_NAME_LABEL];
    const namespace = slice.metadata.namespace ?? 'default';
    if (!name || (slice.addressType && slice.addressType !== 'IPv4')) continue;
    const key = `${namespace}/${name}`;
    const eps = byService.get(key) ?? { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace }, subsets: [] };
    const ready = (slice.endpoints ?? []).filter((e) => e.conditions?.ready !== false);
    const ports = (slice.ports ?? []).filter((p): p is { name?: string; port: number; protocol?: string } => typeof p.port === 'number');
    if (ready.length && ports.length) {
      eps.subsets?.push({
        addresses: ready.flatMap((e) => e.addresses.map((ip) => ({ ip, targetRef: e.targetRef }))),
        ports: ports.map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP' })),
      });
    }
    byService.set(key, eps);
  }
  return [...byService.values()];
}

/**
 * The endpoint informer: EndpointSlices when served, else Endpoints. Which one is decided
 * once at start by listing slices.
 */
export class EndpointSource {
  private informer?: Informer<KubeObject>;
  useSlices?: boolean;
  private stopped = false;

  constructor(private readonly client: KubeClient, private readonly onEvent: () => void) {}

  async start(): Promise<void> {
    for (let attempt = 0; this.useSlices === undefined && !this.stopped; attempt++) {
      try {
        await this.client.list(R.endpointSlices, { limit: 1 });
        this.useSlices = true;
      } catch (e) {
        if (isNotFound(e)) {
          this.useSlices = false;
          console.warn('pilot: endpointslices.discovery.k8s.io is not served; reading Endpoints instead');
        } else {
          console.error(`pilot: listing endpointslices: ${(e as Error).message}; retrying`);
          await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** attempt, 5_000)));
        }
      }
    }
    if (this.stopped) return;
    this.informer = new Informer<KubeObject>(this.client, this.useSlices ? R.endpointSlices : R.endpoints)
      .on({ add: this.onEvent, update: this.onEvent, delete: this.onEvent }).start();
  }

  get hasSynced(): boolean { return !!this.informer?.hasSynced; }

  /** The endpoints as Endpoints objects, whichever API they came from. */
  endpoints(): Endpoints[] {
    const items = this.informer?.list() ?? [];
    return this.useSlices ? endpointsFromSlices(items as EndpointSlice[]) : items as Endpoints[];
  }

  stop(): void { this.stopped = true; this.informer?.stop(); }
}
