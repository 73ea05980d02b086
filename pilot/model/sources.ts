// The informer layer: Namespaces, Services, Endpoints, Pods and the Istio networking and
// security CRDs, read only through the Kubernetes API. It is a thin adapter: it reports that something
// changed and hands out the cached objects as plain lists for the next snapshot.
import { Informer, KubeClient, R, isNotFound, type KubeObject, type Pod, type ResourceRef, type Secret } from '../../api/kube/index.js';
import { isCredentialSecret } from './gateway-tls.js';
import { NETWORKING_VERSIONS, type AuthorizationPolicy, type DestinationRule, type Gateway, type PeerAuthentication, type ServiceEntry, type Sidecar, type VirtualService } from '../../api/istio/index.js';
import type { ConfigInputs } from './inputs.js';
import { EndpointSource } from './endpoint-slices.js';
import { relevantChange } from './config-view.js';

type Kind = keyof ConfigInputs;

/** An Istio kind whose served version is found at start (v1, else v1beta1). */
class CrdSource<T extends KubeObject> {
  informer?: Informer<T>;
  version?: string;
  private timer?: NodeJS.Timeout;
  private discovered = false;
  private reportedMissing = false;
  private stopped = false;

  constructor(private readonly client: KubeClient, private readonly base: ResourceRef, private readonly onEvent: () => void, private readonly kind: Kind, private readonly retryMs = 5_000) {}

  get synced(): boolean { return this.discovered && (!this.informer || this.informer.hasSynced); }
  list(): T[] { return this.informer?.list() ?? []; }

  async start(): Promise<void> {
    while (!this.stopped) {
      try {
        const ref = await this.findServedVersion();
        this.discovered = true;
        if (ref) { this.startInformer(ref); return; }
        // Not installed yet (the CRDs may be applied after pilot): empty for now, look again.
        if (!this.reportedMissing) {
          this.reportedMissing = true;
          console.warn(`pilot: ${this.base.resource}.${this.base.group} is not served (v1 or v1beta1); treated as empty until it is`);
          this.onEvent();
        }
      } catch (e) {
        console.error(`pilot: discovering ${this.base.group}/${this.base.resource}: ${(e as Error).message}`);
      }
      await new Promise<void>((r) => { this.timer = setTimeout(r, this.retryMs); });
    }
  }

  private async findServedVersion(): Promise<ResourceRef | undefined> {
    for (const version of NETWORKING_VERSIONS) {
      const ref = { ...this.base, version };
      try {
        await this.client.list(ref, { limit: 1 });
        this.version = version;
        return ref;
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    return undefined;
  }

  private startInformer(ref: ResourceRef): void {
    // A status write (pilot's own validationMessages) or a metadata-only edit is no change.
    this.informer = new Informer<T>(this.client, ref).on({
      add: this.onEvent, delete: this.onEvent,
      update: (a, b) => { if (relevantChange(this.kind, a, b)) this.onEvent(); },
    }).start();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.informer?.stop();
  }
}

export class KubeSources {
  private readonly core: { kind: Kind; informer: Informer<KubeObject> }[];
  private readonly vs: CrdSource<VirtualService>;
  private readonly dr: CrdSource<DestinationRule>;
  private readonly gw: CrdSource<Gateway>;
  private readonly pa: CrdSource<PeerAuthentication>;
  private readonly ap: CrdSource<AuthorizationPolicy>;
  private readonly se: CrdSource<ServiceEntry>;
  private readonly eps: EndpointSource;
  private readonly sc: CrdSource<Sidecar>;
  /** Secrets, for gateway credentials; only ones that can hold TLS material trigger a push. */
  private readonly secrets: Informer<Secret>;

  constructor(private readonly client: KubeClient, onChange: (kind: Kind) => void) {
    // Updates count only when they change what pilot reads (config-view.ts): pod status
    // churn, a LoadBalancer's status, resourceVersion bumps and tools' annotations do not.
    const handlers = (kind: Kind) => ({
      add: () => onChange(kind), delete: () => onChange(kind),
      update: (a: KubeObject, b: KubeObject) => { if (relevantChange(kind, a, b)) onChange(kind); },
    });
    const pods = new Informer<Pod>(client, R.pods).on(handlers('pods'));
    this.core = [
      { kind: 'namespaces', informer: new Informer<KubeObject>(client, R.namespaces).on(handlers('namespaces')) },
      { kind: 'services', informer: new Informer<KubeObject>(client, R.services).on(handlers('services')) },
      { kind: 'pods', informer: pods as unknown as Informer<KubeObject> },
    ];
    this.vs = new CrdSource<VirtualService>(client, R.virtualServices, () => onChange('virtualServices'), 'virtualServices');
    this.dr = new CrdSource<DestinationRule>(client, R.destinationRules, () => onChange('destinationRules'), 'destinationRules');
    this.gw = new CrdSource<Gateway>(client, R.gateways, () => onChange('gateways'), 'gateways');
    // security.istio.io serves the same versions (v1, else v1beta1).
    this.pa = new CrdSource<PeerAuthentication>(client, R.peerAuthentications, () => onChange('peerAuthentications'), 'peerAuthentications');
    this.ap = new CrdSource<AuthorizationPolicy>(client, R.authorizationPolicies, () => onChange('authorizationPolicies'), 'authorizationPolicies');
    this.eps = new EndpointSource(client, () => onChange('endpoints'));
    this.se = new CrdSource<ServiceEntry>(client, R.serviceEntries, () => onChange('serviceEntries'), 'serviceEntries');
    this.sc = new CrdSource<Sidecar>(client, R.sidecars, () => onChange('sidecars'), 'sidecars');
    const secretChanged = (...ss: Secret[]): void => { if (ss.some(isCredentialSecret)) onChange('secrets'); };
    this.secrets = new Informer<Secret>(client, R.secrets).on({ add: (s) => secretChanged(s), delete: (s) => secretChanged(s), update: (a, b) => secretChanged(a, b) });
  }

  start(): this {
    for (const { informer } of this.core) informer.start();
    void this.vs.start();
    void this.dr.start();
    void this.gw.start();
    void this.pa.start();
    void this.ap.start();
    this.eps.start().catch((e: Error) => console.error(`pilot: endpoints: ${e.message}`));
    void this.se.start();
    void this.sc.start();
    this.secrets.start();
    return this;
  }

  get hasSynced(): boolean {
    return this.core.every((c) => c.informer.hasSynced) && this.vs.synced && this.dr.synced && this.gw.synced && this.pa.synced && this.ap.synced
      && this.eps.hasSynced && this.se.synced && this.sc.synced && this.secrets.hasSynced;
  }

  async waitForSync(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await Promise.all(this.core.map((c) => c.informer.waitForSync(timeoutMs)));
    while (!this.hasSynced) {
      if (Date.now() > deadline) throw new Error('pilot: Istio config informers not synced in time');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Served versions of the Istio kinds (undefined while a CRD is not installed). */
  get crdVersions(): Record<string, string | null> {
    return {
      virtualservices: this.vs.version ?? null, destinationrules: this.dr.version ?? null, gateways: this.gw.version ?? null,
      peerauthentications: this.pa.version ?? null, authorizationpolicies: this.ap.version ?? null,
      serviceentries: this.se.version ?? null, sidecars: this.sc.version ?? null,
    };
  }

  inputs(): ConfigInputs {
    const get = (kind: Kind): KubeObject[] => this.core.find((c) => c.kind === kind)?.informer.list() ?? [];
    return {
      namespaces: get('namespaces') as ConfigInputs['namespaces'],
      services: get('services') as ConfigInputs['services'],
      endpoints: this.eps.endpoints(),
      pods: get('pods') as ConfigInputs['pods'],
      virtualServices: this.vs.list(),
      destinationRules: this.dr.list(),
      gateways: this.gw.list(),
      peerAuthentications: this.pa.list(),
      authorizationPolicies: this.ap.list(),
      serviceEntries: this.se.list(),
      sidecars: this.sc.list(),
      secrets: this.secrets.list().filter(isCredentialSecret),
    };
  }

  stop(): void {
    for (const { informer } of this.core) informer.stop();
    this.vs.stop();
    this.dr.stop();
    this.gw.stop();
    this.pa.stop();
    this.ap.stop();
    this.se.stop();
    this.sc.stop();
    this.secrets.stop();
    this.eps.stop();
  }
}
