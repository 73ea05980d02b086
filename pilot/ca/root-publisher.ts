// Publishes the mesh trust bundle to every namespace as ConfigMap `istio-ca-root-cert`
// (key root-cert.pem), as istiod's namespace controller does; workloads mount it to verify
// the CA and their peers. Level-triggered: any namespace or ConfigMap event re-syncs one key.
import { Informer, R, WorkQueue, isAlreadyExists, isNotFound, type ConfigMap, type KubeClient, type Namespace } from '../../api/kube/index.js';

export const ROOT_CERT_CONFIGMAP = 'istio-ca-root-cert';
export const ROOT_CERT_KEY = 'root-cert.pem';

function isActive(ns: Namespace | undefined): ns is Namespace {
  return !!ns && !ns.metadata.deletionTimestamp && ns.status?.phase !== 'Terminating';
}

export class RootCertPublisher {
  private readonly namespaces: Informer<Namespace>;
  private readonly configMaps: Informer<ConfigMap>;
  private readonly queue: WorkQueue;
  private bundle: string;
  private readonly ownInformers: boolean;

  /** Informers may be shared with the caller's; when omitted, the publisher starts its own. */
  constructor(private readonly client: KubeClient, rootBundlePem: string, informers?: { namespaces: Informer<Namespace>; configMaps: Informer<ConfigMap> }) {
    this.bundle = rootBundlePem;
    this.namespaces = informers?.namespaces ?? new Informer<Namespace>(client, R.namespaces);
    this.configMaps = informers?.configMaps ?? new Informer<ConfigMap>(client, R.configMaps, { fieldSelector: `metadata.name=${ROOT_CERT_CONFIGMAP}` });
    this.ownInformers = !informers;
    this.queue = new WorkQueue('istio-ca-root-cert-publisher', (ns) => this.sync(ns));
    this.namespaces.on({ add: (ns) => this.enqueue(ns.metadata.name), update: (_o, ns) => this.enqueue(ns.metadata.name) });
    const mine = (cm: ConfigMap): void => { if (cm.metadata.name === ROOT_CERT_CONFIGMAP) this.enqueue(cm.metadata.namespace); };
    this.configMaps.on({ update: (_o, cm) => mine(cm), delete: mine });
  }

  private enqueue(ns: string | undefined): void { if (ns) this.queue.add(ns); }

  async start(): Promise<void> {
    if (this.ownInformers) { this.namespaces.start(); this.configMaps.start(); }
    await Promise.all([this.namespaces.waitForSync(), this.configMaps.waitForSync()]);
  }

  stop(): void {
    this.queue.stop();
    if (this.ownInformers) { this.namespaces.stop(); this.configMaps.stop(); }
  }

  /** A new trust bundle (root rotation): every namespace is re-synced. */
  setRootBundle(pem: string): void {
    this.bundle = pem;
    for (const ns of this.namespaces.list()) this.enqueue(ns.metadata.name);
  }

  async sync(namespace: string): Promise<void> {
    if (!isActive(this.namespaces.get(namespace))) return;
    const data = { [ROOT_CERT_KEY]: this.bundle };
    const cur = this.configMaps.get(`${namespace}/${ROOT_CERT_CONFIGMAP}`);
    if (cur) {
      if (cur.data?.[ROOT_CERT_KEY] === this.bundle) return;
      try { await this.client.update(R.configMaps, { ...cur, data: { ...cur.data, ...data } }); } catch (e) { if (!isNotFound(e)) throw e; }
      return;
    }
    try {
      await this.client.create<ConfigMap>(R.configMaps, { metadata: { name: ROOT_CERT_CONFIGMAP, namespace, labels: { 'istio.io/config': 'true' } }, data });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
  }
}
