// The networking.istio.io CustomResourceDefinitions pilot tests install in the project's API
// server: schemaless (preserve unknown fields), the first version stored.
import type { KubeObject } from '../../api/kube/index.js';

export function networkingCrd(plural: string, kind: string, versions: string[] = ['v1', 'v1beta1'], opts: { status?: boolean } = {}): KubeObject {
  const schema = { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } };
  return {
    metadata: { name: `${plural}.networking.istio.io` },
    spec: {
      group: 'networking.istio.io', scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: versions.map((name, i) => ({ name, served: true, storage: i === 0, schema, ...(opts.status ? { subresources: { status: {} } } : {}) })),
    },
  };
}
