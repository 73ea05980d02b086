// The resources Trellis talks to, by group/version/resource. A table rather than a
// function per kind, so adding a kind is one line.

export interface ResourceRef {
  group: string; // '' for the core group
  version: string;
  resource: string; // plural, as in the URL
  kind: string;
  namespaced: boolean;
}

function ref(group: string, version: string, resource: string, kind: string, namespaced = true): ResourceRef {
  return { group, version, resource, kind, namespaced };
}

export const R = {
  namespaces: ref('', 'v1', 'namespaces', 'Namespace', false),
  nodes: ref('', 'v1', 'nodes', 'Node', false),
  pods: ref('', 'v1', 'pods', 'Pod'),
  services: ref('', 'v1', 'services', 'Service'),
  endpoints: ref('', 'v1', 'endpoints', 'Endpoints'),
  serviceAccounts: ref('', 'v1', 'serviceaccounts', 'ServiceAccount'),
  secrets: ref('', 'v1', 'secrets', 'Secret'),
  configMaps: ref('', 'v1', 'configmaps', 'ConfigMap'),
  events: ref('', 'v1', 'events', 'Event'),
  deployments: ref('apps', 'v1', 'deployments', 'Deployment'),
  replicaSets: ref('apps', 'v1', 'replicasets', 'ReplicaSet'),
  statefulSets: ref('apps', 'v1', 'statefulsets', 'StatefulSet'),
  daemonSets: ref('apps', 'v1', 'daemonsets', 'DaemonSet'),
  controllerRevisions: ref('apps', 'v1', 'controllerrevisions', 'ControllerRevision'),
  jobs: ref('batch', 'v1', 'jobs', 'Job'),
  endpointSlices: ref('discovery.k8s.io', 'v1', 'endpointslices', 'EndpointSlice'),
  mutatingWebhookConfigurations: ref('admissionregistration.k8s.io', 'v1', 'mutatingwebhookconfigurations', 'MutatingWebhookConfiguration', false),
  validatingWebhookConfigurations: ref('admissionregistration.k8s.io', 'v1', 'validatingwebhookconfigurations', 'ValidatingWebhookConfiguration', false),
  customResourceDefinitions: ref('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', 'CustomResourceDefinition', false),
  tokenReviews: ref('authentication.k8s.io', 'v1', 'tokenreviews', 'TokenReview', false),
  virtualServices: ref('networking.istio.io', 'v1', 'virtualservices', 'VirtualService'),
  destinationRules: ref('networking.istio.io', 'v1', 'destinationrules', 'DestinationRule'),
  gateways: ref('networking.istio.io', 'v1', 'gateways', 'Gateway'),
  serviceEntries: ref('networking.istio.io', 'v1', 'serviceentries', 'ServiceEntry'),
  sidecars: ref('networking.istio.io', 'v1', 'sidecars', 'Sidecar'),
  peerAuthentications: ref('security.istio.io', 'v1', 'peerauthentications', 'PeerAuthentication'),
  authorizationPolicies: ref('security.istio.io', 'v1', 'authorizationpolicies', 'AuthorizationPolicy'),
} as const;

export function apiVersionOf(r: ResourceRef): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** The collection URL path: /api/v1/namespaces/ns/pods or /apis/apps/v1/deployments. */
export function collectionPath(r: ResourceRef, namespace?: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  if (r.namespaced && namespace) return `${base}/namespaces/${encodeURIComponent(namespace)}/${r.resource}`;
  return `${base}/${r.resource}`;
}

export function objectPath(r: ResourceRef, name: string, namespace?: string, subresource?: string): string {
  const p = `${collectionPath(r, namespace)}/${encodeURIComponent(name)}`;
  return subresource ? `${p}/${subresource}` : p;
}
