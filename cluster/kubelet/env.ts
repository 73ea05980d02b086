// A container's environment: its env entries (values, downward API fields, ConfigMap and
// Secret keys) and envFrom, plus what every Kubernetes container sees.
import path from 'node:path';
import type { ConfigMap, Container, EnvVar, KubeClient, Pod, Secret, Service } from '../../api/kube/index.js';
import { R, isNotFound } from '../../api/kube/index.js';
import { resolveFieldPath, type PodAddresses } from './fieldref.js';

const STANDARD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The standard PATH, plus the directory of this node binary so catalog `node ...` entries resolve. */
export const DEFAULT_PATH = STANDARD_PATH.split(':').includes(path.dirname(process.execPath))
  ? STANDARD_PATH
  : `${STANDARD_PATH}:${path.dirname(process.execPath)}`;

/** A problem the user must fix in the API (missing ConfigMap...); reported as CreateContainerConfigError. */
export class ContainerConfigError extends Error {
  readonly reason = 'CreateContainerConfigError';
}

interface EnvFromSource {
  prefix?: string;
  configMapRef?: { name: string; optional?: boolean };
  secretRef?: { name: string; optional?: boolean };
}

/** Fetches ConfigMaps and Secrets once per container start. */
export class ObjectSource {
  private readonly cache = new Map<string, ConfigMap | Secret | null>();
  constructor(private readonly client: KubeClient, private readonly namespace: string) {}

  async configMap(name: string): Promise<ConfigMap | undefined> {
    return (await this.fetch('configmaps', name)) as ConfigMap | undefined;
  }

  async secret(name: string): Promise<Secret | undefined> {
    return (await this.fetch('secrets', name)) as Secret | undefined;
  }

  /**
   * The `kubernetes` Service's ClusterIP, which in-cluster clients reach the API server at
   * (the kubelet derives KUBERNETES_SERVICE_HOST from it, as Kubernetes' kubelet does).
   */
  async apiServiceIP(): Promise<string | undefined> {
    try {
      const svc = await this.client.get<Service>(R.services, 'kubernetes', 'default');
      return svc.spec.clusterIP || undefined;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private async fetch(kind: 'configmaps' | 'secrets', name: string): Promise<ConfigMap | Secret | undefined> {
    const key = `${kind}/${name}`;
    if (this.cache.has(key)) return this.cache.get(key) ?? undefined;
    try {
      const obj = await this.client.get<ConfigMap | Secret>(kind === 'configmaps' ? R.configMaps : R.secrets, name, this.namespace);
      this.cache.set(key, obj);
      return obj;
    } catch (e) {
      if (isNotFound(e)) { this.cache.set(key, null); return undefined; }
      throw e;
    }
  }
}

/** Secret values are base64 in `data`; ConfigMaps hold text in `data` and base64 in `binaryData`. */
export function configMapData(cm: ConfigMap): Record<string, string> {
  const out: Record<string, string> = { ...(cm.data ?? {}) };
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return out;
}

export function secretData(s: Secret): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of Object.entries(s.stringData ?? {})) out[k] = v;
  return out;
}

/** Kubernetes' $(VAR) expansion in values, from variables defined earlier; $$ escapes. */
export function expandVars(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === '$$') return '$';
    return name !== undefined && Object.prototype.hasOwnProperty.call(vars, name) ? vars[name] : whole;
  });
}

export async function containerEnv(pod: Pod, c: Container, addr: PodAddresses, objects: ObjectSource, home: string): Promise<Record<string, string>> {
  const where = `pod ${pod.metadata.namespace}/${pod.metadata.name} container ${c.name}`;
  const env: Record<string, string> = {
    PATH: DEFAULT_PATH,
    HOME: home,
    HOSTNAME: pod.metadata.name ?? '',
    KUBERNETES_SERVICE_HOST: (await objects.apiServiceIP()) ?? '10.96.0.1',
    KUBERNETES_SERVICE_PORT: '443',
    KUBERNETES_SERVICE_PORT_HTTPS: '443',
  };
  const envFrom = (c as { envFrom?: EnvFromSource[] }).envFrom ?? [];
  for (const [i, src] of envFrom.entries()) {
    let data: Record<string, string> | undefined;
    if (src.configMapRef) {
      const cm = await objects.configMap(src.configMapRef.name);
      if (!cm && !src.configMapRef.optional) throw new ContainerConfigError(`${where}: envFrom[${i}].configMapRef: configmap "${src.configMapRef.name}" not found`);
      data = cm ? configMapData(cm) : undefined;
    } else if (src.secretRef) {
      const s = await objects.secret(src.secretRef.name);
      if (!s && !src.secretRef.optional) throw new ContainerConfigError(`${where}: envFrom[${i}].secretRef: secret "${src.secretRef.name}" not found`);
      data = s ? secretData(s) : undefined;
    }
    for (const [k, v] of Object.entries(data ?? {})) env[(src.prefix ?? '') + k] = v;
  }
  for (const [i, e] of (c.env ?? []).entries()) {
    const v = await envValue(pod, e, addr, objects, `${where}: env[${i}] (${e.name})`, env);
    if (v !== undefined) env[e.name] = v;
  }
  return env;
}

async function envValue(pod: Pod, e: EnvVar, addr: PodAddresses, objects: ObjectSource, where: string, defined: Record<string, string>): Promise<string | undefined> {
  const from = e.valueFrom;
  if (!from) return expandVars(e.value ?? '', defined);
  if (from.fieldRef) {
    try { return resolveFieldPath(pod, from.fieldRef.fieldPath, addr); } catch (err) {
      throw new ContainerConfigError(`${where}.valueFrom.${(err as Error).message}`);
    }
  }
  if (from.configMapKeyRef) {
    const ref = from.configMapKeyRef;
    const cm = await objects.configMap(ref.name);
    const v = cm ? configMapData(cm)[ref.key] : undefined;
    if (v === undefined && !ref.optional) {
      throw new ContainerConfigError(`${where}.valueFrom.configMapKeyRef: ${cm ? `key "${ref.key}" not in` : 'not found:'} configmap "${ref.name}"`);
    }
    return v;
  }
  if (from.secretKeyRef) {
    const ref = from.secretKeyRef;
    const s = await objects.secret(ref.name);
    const v = s ? secretData(s)[ref.key] : undefined;
    if (v === undefined && !ref.optional) {
      throw new ContainerConfigError(`${where}.valueFrom.secretKeyRef: ${s ? `key "${ref.key}" not in` : 'not found:'} secret "${ref.name}"`);
    }
    return v;
  }
  return undefined;
}
