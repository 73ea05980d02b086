// The injection template's values as kept in the ConfigMap istio-sidecar-injector (key
// `values`, YAML or JSON), checked field by field: a bad edit is rejected with the field named,
// and the injector keeps injecting with its last good values.
import { parse as parseYaml } from 'yaml';
import type { TemplateValues } from './template.js';

export const TEMPLATE_CONFIGMAP = 'istio-sidecar-injector';
export const TEMPLATE_KEY = 'values';

/** A value in the ConfigMap that cannot be used; `field` is the path under data.values. */
export class TemplateConfigError extends Error {
  constructor(readonly field: string, message: string) {
    super(`data.${TEMPLATE_KEY}.${field}: ${message}`);
  }
}

type Kind = 'string' | 'port' | 'id' | 'bool' | 'strings';

/** Every field the ConfigMap may set, and what it must be. */
const FIELDS: Record<keyof TemplateValues, Kind> = {
  proxyImage: 'string',
  proxyVersion: 'string',
  pilotAddress: 'string',
  caAddress: 'string',
  trustDomain: 'string',
  clusterId: 'string',
  revision: 'string',
  proxyUid: 'id',
  proxyGid: 'id',
  outboundCapturePort: 'port',
  inboundCapturePort: 'port',
  statusPort: 'port',
  prometheusPort: 'port',
  inboundExcludePorts: 'strings',
  ignoredNamespaces: 'strings',
  rewriteAppProbes: 'bool',
};

function checkField(field: string, kind: Kind, v: unknown): unknown {
  switch (kind) {
    case 'string':
      if (typeof v !== 'string' || v.trim() === '') throw new TemplateConfigError(field, `must be a non-empty string, got ${JSON.stringify(v)}`);
      return v;
    case 'port':
      if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) throw new TemplateConfigError(field, `must be a port number 1-65535, got ${JSON.stringify(v)}`);
      return v;
    case 'id':
      if (!Number.isInteger(v) || (v as number) < 0) throw new TemplateConfigError(field, `must be a non-negative integer, got ${JSON.stringify(v)}`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new TemplateConfigError(field, `must be true or false, got ${JSON.stringify(v)}`);
      return v;
    case 'strings':
      if (!Array.isArray(v)) throw new TemplateConfigError(field, `must be a list of strings, got ${JSON.stringify(v)}`);
      v.forEach((s, i) => { if (typeof s !== 'string') throw new TemplateConfigError(`${field}[${i}]`, `must be a string, got ${JSON.stringify(s)}`); });
      return [...(v as string[])];
  }
}

/**
 * The template values from the ConfigMap's data over `base` (the defaults from the
 * environment). Throws TemplateConfigError naming the field for anything unusable.
 */
export function templateValuesFromConfigMap(data: Record<string, string> | undefined, base: TemplateValues): TemplateValues {
  const text = data?.[TEMPLATE_KEY];
  if (text === undefined) throw new TemplateConfigError('', 'key is missing');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new TemplateConfigError('', `not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return { ...base };
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new TemplateConfigError('', 'must be a map of template values');
  const out: Record<string, unknown> = { ...base };
  for (const [field, v] of Object.entries(doc as Record<string, unknown>)) {
    const kind = FIELDS[field as keyof TemplateValues];
    if (!kind) throw new TemplateConfigError(field, `unknown field (known: ${Object.keys(FIELDS).join(', ')})`);
    out[field] = checkField(field, kind, v);
  }
  return out as unknown as TemplateValues;
}
