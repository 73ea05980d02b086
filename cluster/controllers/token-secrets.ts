// Token controller for Secrets of type kubernetes.io/service-account-token (Kubernetes'
// TokensController): a Secret naming a service account in its annotation gets that account's
// token, the cluster CA and the namespace written into it; a Secret whose account is gone (or
// was recreated with another uid) is deleted, and so are an account's Secrets when it is deleted.
import { R, WorkQueue, isConflict, isNotFound, type Informer, type KubeClient, type Secret, type ServiceAccount } from '../../api/kube/index.js';
import type { SharedInformers } from './shared-informers.js';

export const SERVICE_ACCOUNT_TOKEN_TYPE = 'kubernetes.io/service-account-token';
export const SA_NAME_ANNOTATION = 'kubernetes.io/service-account.name';
export const SA_UID_ANNOTATION = 'kubernetes.io/service-account.uid';

/** Signs a legacy token; the controller manager holds the service-account key for this. */
export type LegacyTokenIssuer = (sa: { namespace: string; name: string; uid: string }, secretName: string) => string;

const b64 = (s: string): string => Buffer.from(s).toString('base64');

export class TokenSecretController {
  private readonly secrets: Informer<Secret>;
  private readonly accounts: Informer<ServiceAccount>;
  private readonly queue: WorkQueue;

  constructor(
    private readonly client: KubeClient,
    informers: SharedInformers,
    private readonly issue: LegacyTokenIssuer,
    private readonly rootCAPem: string,
  ) {
    this.secrets = informers.for<Secret>(R.secrets);
    this.accounts = informers.for<ServiceAccount>(R.serviceAccounts);
    this.queue = new WorkQueue('serviceaccount-token', (key) => this.sync(key));
    const enqueue = (s: Secret) => { if (s.type === SERVICE_ACCOUNT_TOKEN_TYPE) this.queue.add(`${s.metadata.namespace}/${s.metadata.name}`); };
    this.secrets.on({ add: enqueue, update: (_o, s) => enqueue(s) });
    // An account's deletion or re-creation concerns every Secret that names it.
    const byAccount = (sa: ServiceAccount) => {
      for (const s of this.secrets.list()) {
        if (s.metadata.namespace === sa.metadata.namespace && s.metadata.annotations?.[SA_NAME_ANNOTATION] === sa.metadata.name) enqueue(s);
      }
    };
    this.accounts.on({ add: byAccount, delete: byAccount });
  }

  stop(): void { this.queue.stop(); }

  async sync(key: string): Promise<void> {
    const secret = this.secrets.get(key);
    if (!secret || secret.type !== SERVICE_ACCOUNT_TOKEN_TYPE || secret.metadata.deletionTimestamp) return;
    const namespace = secret.metadata.namespace as string;
    const name = secret.metadata.name as string;
    const saName = secret.metadata.annotations?.[SA_NAME_ANNOTATION] ?? '';
    const wantUid = secret.metadata.annotations?.[SA_UID_ANNOTATION];
    const sa = await this.account(namespace, saName);
    if (!sa || (wantUid && wantUid !== sa.metadata.uid)) {
      try {
        await this.client.delete(R.secrets, name, namespace, { preconditionsUid: secret.metadata.uid });
      } catch (e) {
        if (!isNotFound(e) && !isConflict(e)) throw e;
      }
      return;
    }
    const uid = sa.metadata.uid as string;
    if (secret.data?.token && secret.data['ca.crt'] && secret.data.namespace && wantUid === uid) return;
    const token = this.issue({ namespace, name: saName, uid }, name);
    try {
      await this.client.update<Secret>(R.secrets, {
        ...secret,
        metadata: { ...secret.metadata, annotations: { ...secret.metadata.annotations, [SA_UID_ANNOTATION]: uid } },
        data: { ...secret.data, token: b64(token), 'ca.crt': b64(this.rootCAPem), namespace: b64(namespace) },
      });
    } catch (e) {
      // A newer version of the Secret is on its way through the informer and will be synced.
      if (!isNotFound(e) && !isConflict(e)) throw e;
    }
  }

  /** The account from the cache, or from the API when the cache has not seen it yet. */
  private async account(namespace: string, name: string): Promise<ServiceAccount | undefined> {
    const cached = this.accounts.get(`${namespace}/${name}`);
    if (cached) return cached;
    try {
      return await this.client.get<ServiceAccount>(R.serviceAccounts, name, namespace);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }
}
