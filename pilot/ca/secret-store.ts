// Where the CA keeps its key material: a Secret in pilot's namespace. The interface is small
// so pilot can back it with the Kubernetes API and tests with memory.
import { R, isAlreadyExists, type KubeClient, type Secret } from '../../api/kube/index.js';

/** Secret data, decoded (PEM strings), by key. */
export type SecretData = Record<string, string>;

export interface SecretStore {
  get(name: string): Promise<SecretData | undefined>;
  /** Creates the Secret; throws SecretExistsError when another writer created it first. */
  create(name: string, data: SecretData): Promise<void>;
}

export class SecretExistsError extends Error {
  constructor(name: string) { super(`secret ${name} already exists`); }
}

export class MemorySecretStore implements SecretStore {
  readonly secrets = new Map<string, SecretData>();
  async get(name: string): Promise<SecretData | undefined> {
    const d = this.secrets.get(name);
    return d ? { ...d } : undefined;
  }
  async create(name: string, data: SecretData): Promise<void> {
    if (this.secrets.has(name)) throw new SecretExistsError(name);
    this.secrets.set(name, { ...data });
  }
}

/** Secrets in one namespace through the Kubernetes API (base64 `data`, as the API stores it). */
export class KubeSecretStore implements SecretStore {
  constructor(private readonly client: KubeClient, readonly namespace: string, private readonly type = 'istio.io/ca-root') {}

  async get(name: string): Promise<SecretData | undefined> {
    const s = await this.client.find<Secret>(R.secrets, name, this.namespace);
    if (!s) return undefined;
    const out: SecretData = {};
    for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
    return out;
  }

  async create(name: string, data: SecretData): Promise<void> {
    const encoded: Record<string, string> = {};
    for (const [k, v] of Object.entries(data)) encoded[k] = Buffer.from(v, 'utf8').toString('base64');
    try {
      await this.client.create<Secret>(R.secrets, { metadata: { name, namespace: this.namespace }, type: this.type, data: encoded });
    } catch (e) {
      if (isAlreadyExists(e)) throw new SecretExistsError(`${this.namespace}/${name}`);
      throw e;
    }
  }
}
