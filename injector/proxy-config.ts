// Istio's per-pod proxy.istio.io/config annotation (a ProxyConfig in YAML or JSON). Only its
// proxyMetadata is used: each entry becomes an environment variable of the istio-proxy
// container, exactly as Istio's injector does. That is how a pod sets the agent's knobs,
// e.g. `proxyMetadata: { SECRET_TTL: 1h }` for shorter-lived workload certificates.
import { parse as parseYaml } from 'yaml';
import type { Pod } from '../api/kube/index.js';
import { InjectionError } from './traffic-annotations.js';

export const PROXY_CONFIG_ANNOTATION = 'proxy.istio.io/config';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The annotation's proxyMetadata as name -> value; {} without the annotation. */
export function proxyMetadata(pod: Pod): Record<string, string> {
  const text = pod.metadata.annotations?.[PROXY_CONFIG_ANNOTATION];
  if (text === undefined || text.trim() === '') return {};
  const where = `metadata.annotations[${PROXY_CONFIG_ANNOTATION}]`;
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new InjectionError(`${where}: not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new InjectionError(`${where}: must be a ProxyConfig object`);
  const meta = (doc as Record<string, unknown>).proxyMetadata;
  if (meta === undefined || meta === null) return {};
  if (typeof meta !== 'object' || Array.isArray(meta)) throw new InjectionError(`${where}.proxyMetadata: must be a map of name -> string`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta as Record<string, unknown>)) {
    if (!ENV_NAME.test(k)) throw new InjectionError(`${where}.proxyMetadata.${k}: not a valid environment variable name`);
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new InjectionError(`${where}.proxyMetadata.${k}: must be a string, got ${JSON.stringify(v)}`);
    out[k] = String(v);
  }
  return out;
}
