// ServiceAccount controller: every Active namespace has a `default` ServiceAccount, so pods
// that name none can still be admitted and get a token.
import { R, WorkQueue, isAlreadyExists, type Informer, type KubeClient, type Namespace, type ServiceAccount } from '../../api/kube/index.js';
import type { SharedInformers } from './shared-informers.js';

export const DEFAULT_SERVICE_ACCOUNT = 'default';

export function isNamespaceActive(ns: Namespace | undefined): ns is Namespace {
  return !!ns && !ns.metadata.deletionTimestamp && ns.status?.phase !== 'Terminating';
}

export class ServiceAccountController {
  private readonly namespaces: Informer<Namespace>;
  private readonly accounts: Informer<ServiceAccount>;
  private readonly queue: WorkQueue;

  constructor(private readonly client: KubeClient, informers: SharedInformers) {
    this.namespaces = informers.for<Namespace>(R.namespaces);
    this.accounts = informers.for<ServiceAccount>(R.serviceAccounts);
    this.queue = new WorkQueue('serviceaccount', (ns) => this.sync(ns));
    this.namespaces.on({ add: (ns) => this.queue.add(ns.metadata.name as string), update: (_o, ns) => this.queue.add(ns.metadata.name as string) });
    this.accounts.on({
      delete: (sa) => { if (sa.metadata.name === DEFAULT_SERVICE_ACCOUNT) this.queue.add(sa.metadata.namespace as string); },
    });
  }

  stop(): void { this.queue.stop(); }

  async sync(namespace: string): Promise<void> {
    if (!isNamespaceActive(this.namespaces.get(namespace))) return;
    if (this.accounts.get(`${namespace}/${DEFAULT_SERVICE_ACCOUNT}`)) return;
    try {
      await this.client.create<ServiceAccount>(R.serviceAccounts, { metadata: { name: DEFAULT_SERVICE_ACCOUNT, namespace } });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
  }
}
