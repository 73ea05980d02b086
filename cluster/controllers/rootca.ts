// Root CA publisher: every namespace gets ConfigMap kube-root-ca.crt holding the cluster CA
// (key ca.crt), which the kubelet projects into pods so in-cluster clients verify the
// apiserver's certificate.
import { R, WorkQueue, isAlreadyExists, isNotFound, type ConfigMap, type Informer, type KubeClient, type Namespace } from '../../api/kube/index.js';
import { isNamespaceActive } from './serviceaccount.js';
import type { SharedInformers } from './shared-informers.js';

export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';

export class RootCAPublisher {
  private readonly namespaces: Informer<Namespace>;
  private readonly configMaps: Informer<ConfigMap>;
  private readonly queue: WorkQueue;

  constructor(private readonly client: KubeClient, informers: SharedInformers, private readonly rootCAPem: string) {
    this.namespaces = informers.for<Namespace>(R.namespaces);
    this.configMaps = informers.for<ConfigMap>(R.configMaps);
    this.queue = new WorkQueue('root-ca-cert-publisher', (ns) => this.sync(ns));
    this.namespaces.on({ add: (ns) => this.queue.add(ns.metadata.name as string), update: (_o, ns) => this.queue.add(ns.metadata.name as string) });
    const mine = (cm: ConfigMap) => { if (cm.metadata.name === ROOT_CA_CONFIGMAP) this.queue.add(cm.metadata.namespace as string); };
    this.configMaps.on({ update: (_o, cm) => mine(cm), delete: mine });
  }

  stop(): void { this.queue.stop(); }

  async sync(namespace: string): Promise<void> {
    if (!isNamespaceActive(this.namespaces.get(namespace))) return;
    const data = { 'ca.crt': this.rootCAPem };
    const cur = this.configMaps.get(`${namespace}/${ROOT_CA_CONFIGMAP}`);
    if (cur) {
      if (cur.data?.['ca.crt'] === this.rootCAPem && Object.keys(cur.data).length === 1) return;
      try { await this.client.update(R.configMaps, { ...cur, data }); } catch (e) { if (!isNotFound(e)) throw e; }
      return;
    }
    try {
      await this.client.create<ConfigMap>(R.configMaps, {
        metadata: { name: ROOT_CA_CONFIGMAP, namespace, annotations: { 'kubernetes.io/description': 'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.' } },
        data,
      });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
  }
}
