// Discovery documents (legacy form: /api, /api/v1, /apis, /apis/<g>, /apis/<g>/<v>),
// /version, and OpenAPI v3: per group-version, one PATCH path per kind announcing the
// fieldValidation parameter (kubectl's --validate=strict looks for it) and the kinds' schemas
// in components.schemas (for `kubectl explain`). PATCH operations carry no requestBody, so
// kubectl computes strategic merge patches from its compiled-in types, not from these schemas.
import { createHash } from 'node:crypto';
import type { Registry } from './registry/registry.js';
import type { KindInfo } from './registry/types.js';
import type { Json } from './util.js';
import { BUILTIN_SCHEMAS, OBJECT_META } from './schemas/builtin.js';

export const VERSION_INFO = {
  major: '1', minor: '32', gitVersion: 'v1.32.0', gitCommit: 'trellis', gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z', goVersion: 'go1.23.4', compiler: 'gc', platform: 'linux/amd64',
};

function resourcesOf(k: KindInfo): Json[] {
  const base: Json = {
    name: k.resource, singularName: k.singular, namespaced: k.namespaced, kind: k.kind, verbs: k.verbs,
  };
  if (k.shortNames.length) base.shortNames = k.shortNames;
  if (k.categories.length) base.categories = k.categories;
  const out: Json[] = [base];
  if (k.status) out.push({ name: `${k.resource}/status`, singularName: '', namespaced: k.namespaced, kind: k.kind, verbs: ['get', 'patch', 'update'] });
  if (k.scale) out.push({ name: `${k.resource}/scale`, singularName: '', namespaced: k.namespaced, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] });
  for (const s of k.extraSubresources ?? []) {
    const r: Json = { name: `${k.resource}/${s.name}`, singularName: '', namespaced: k.namespaced, kind: s.kind, verbs: s.verbs };
    if (s.group !== undefined) { r.group = s.group; r.version = s.version; }
    out.push(r);
  }
  return out;
}

export function apiVersions(serverAddress: string): Json {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupDoc(g: { group: string; versions: string[] }): Json {
  const versions = g.versions.map((v) => ({ groupVersion: `${g.group}/${v}`, version: v }));
  return { name: g.group, versions, preferredVersion: versions[0] };
}

export function apiGroupList(reg: Registry): Json {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: reg.groups().filter((g) => g.group !== '').map(groupDoc) };
}

export function apiGroup(reg: Registry, group: string): Json | undefined {
  const g = reg.groups().find((x) => x.group === group && group !== '');
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(g) } : undefined;
}

export function apiResourceList(reg: Registry, group: string, version: string): Json | undefined {
  const kinds = reg.kindsIn(group, version);
  if (kinds.length === 0) return undefined;
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources: kinds.flatMap(resourcesOf) };
}

// ---- OpenAPI v3 (minimal) -----------------------------------------------------------

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

export function openApiV3GroupDoc(reg: Registry, group: string, version: string): Json | undefined {
  const kinds = reg.kindsIn(group, version);
  if (kinds.length === 0) return undefined;
  const paths: Json = {};
  for (const k of kinds) {
    const base = `/${gvPath(group, version)}${k.namespaced ? '/namespaces/{namespace}' : ''}/${k.resource}/{name}`;
    paths[base] = {
      patch: {
        'x-kubernetes-group-version-kind': { group, version, kind: k.kind },
        parameters: [{ name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } }],
      },
    };
  }
  const schemas: Json = {};
  for (const k of kinds) {
    const schema = k.crd ? k.crd.schemas[version] : BUILTIN_SCHEMAS[`${group}/${k.kind}`];
    if (!schema) continue;
    const props = (schema.properties ?? {}) as Json;
    schemas[schemaName(group, version, k.kind)] = {
      ...schema,
      // A CRD's schema leaves metadata implicit; the published document spells it out.
      properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, ...props, metadata: OBJECT_META },
      'x-kubernetes-group-version-kind': [{ group, version, kind: k.kind }],
    };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: VERSION_INFO.gitVersion }, paths, components: { schemas } };
}

/** Kubernetes' definition names: io.k8s.api.apps.v1.Deployment; CRDs by reversed group. */
function schemaName(group: string, version: string, kind: string): string {
  if (group === '' || !group.includes('.')) return `io.k8s.api.${group || 'core'}.${version}.${kind}`;
  if (group.endsWith('.k8s.io')) return `io.k8s.api.${group.slice(0, -'.k8s.io'.length).split('.')[0]}.${version}.${kind}`;
  return `${group.split('.').reverse().join('.')}.${version}.${kind}`;
}

export function openApiV3Root(reg: Registry): Json {
  const paths: Json = {};
  for (const g of reg.groups()) {
    for (const v of g.versions) {
      const doc = openApiV3GroupDoc(reg, g.group, v);
      const hash = createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 32).toUpperCase();
      paths[gvPath(g.group, v)] = { serverRelativeURL: `/openapi/v3/${gvPath(g.group, v)}?hash=${hash}` };
    }
  }
  return { paths };
}
