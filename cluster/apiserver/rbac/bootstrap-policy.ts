// The default ClusterRoles and ClusterRoleBindings every Kubernetes cluster starts with
// (plugin/pkg/auth/authorizer/rbac/bootstrappolicy). admin/edit/view are aggregated roles,
// as upstream: their rules come from the ClusterRoles labelled aggregate-to-<role>=true, of
// which system:aggregate-to-admin/-edit/-view hold the defaults (see aggregation.ts).
// Created when missing, so an administrator's edits to them survive restarts.
import { randomUUID } from 'node:crypto';
import type { Store } from '../../store/types.js';
import { isStoreError } from '../../store/types.js';
import { getPath, nowRfc3339, type Json } from '../util.js';
import type { PolicyRule } from './rules.js';

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];
const rule = (apiGroups: string[], resources: string[], verbs: string[]): PolicyRule => ({ apiGroups, resources, verbs });

const viewRules: PolicyRule[] = [
  rule([''], ['configmaps', 'endpoints', 'persistentvolumeclaims', 'persistentvolumeclaims/status', 'pods', 'replicationcontrollers',
    'replicationcontrollers/scale', 'serviceaccounts', 'services', 'services/status'], READ),
  rule([''], ['bindings', 'events', 'limitranges', 'namespaces/status', 'pods/log', 'pods/status', 'replicationcontrollers/status',
    'resourcequotas', 'resourcequotas/status'], READ),
  rule([''], ['namespaces'], READ),
  rule(['discovery.k8s.io'], ['endpointslices'], READ),
  rule(['apps'], ['controllerrevisions', 'daemonsets', 'daemonsets/status', 'deployments', 'deployments/scale', 'deployments/status',
    'replicasets', 'replicasets/scale', 'replicasets/status', 'statefulsets', 'statefulsets/scale', 'statefulsets/status'], READ),
  rule(['autoscaling'], ['horizontalpodautoscalers', 'horizontalpodautoscalers/status'], READ),
  rule(['batch'], ['cronjobs', 'cronjobs/status', 'jobs', 'jobs/status'], READ),
  rule(['policy'], ['poddisruptionbudgets', 'poddisruptionbudgets/status'], READ),
  rule(['networking.k8s.io'], ['ingresses', 'ingresses/status', 'networkpolicies'], READ),
];

const editOnlyRules: PolicyRule[] = [
  rule([''], ['pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy', 'secrets', 'services/proxy'], READ),
  rule([''], ['serviceaccounts'], ['impersonate']),
  rule([''], ['pods', 'pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy'], WRITE),
  rule([''], ['pods/eviction'], ['create']),
  rule([''], ['configmaps', 'events', 'persistentvolumeclaims', 'replicationcontrollers', 'replicationcontrollers/scale', 'secrets',
    'serviceaccounts', 'services', 'services/proxy'], WRITE),
  rule([''], ['serviceaccounts/token'], ['create']),
  rule(['apps'], ['daemonsets', 'deployments', 'deployments/rollback', 'deployments/scale', 'replicasets', 'replicasets/scale',
    'statefulsets', 'statefulsets/scale'], WRITE),
  rule(['autoscaling'], ['horizontalpodautoscalers'], WRITE),
  rule(['batch'], ['cronjobs', 'jobs'], WRITE),
  rule(['policy'], ['poddisruptionbudgets'], WRITE),
  rule(['networking.k8s.io'], ['ingresses', 'networkpolicies'], WRITE),
  rule(['discovery.k8s.io'], ['endpointslices'], WRITE),
];

const adminOnlyRules: PolicyRule[] = [
  rule(['authorization.k8s.io'], ['localsubjectaccessreviews'], ['create']),
  rule(['rbac.authorization.k8s.io'], ['rolebindings', 'roles'], [...READ, ...WRITE]),
];

const DISCOVERY_URLS = ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'];

const AGGREGATE_TO = (role: string): string => `rbac.authorization.k8s.io/aggregate-to-${role}`;

/** The aggregated default roles: name -> the label their selector matches. */
export const AGGREGATED_CLUSTER_ROLES: Record<string, string> = { admin: AGGREGATE_TO('admin'), edit: AGGREGATE_TO('edit'), view: AGGREGATE_TO('view') };

/** The roles that feed them, with Kubernetes' labels (view feeds edit and admin; edit feeds admin). */
const AGGREGATE_SOURCES: { name: string; labels: string[]; rules: PolicyRule[] }[] = [
  { name: 'system:aggregate-to-admin', labels: ['admin'], rules: adminOnlyRules },
  { name: 'system:aggregate-to-edit', labels: ['admin', 'edit'], rules: editOnlyRules },
  { name: 'system:aggregate-to-view', labels: ['admin', 'edit', 'view'], rules: viewRules },
];

export const BOOTSTRAP_CLUSTER_ROLES: Record<string, PolicyRule[]> = {
  'cluster-admin': [rule(['*'], ['*'], ['*']), { nonResourceURLs: ['*'], verbs: ['*'] }],
  'system:discovery': [{ nonResourceURLs: DISCOVERY_URLS, verbs: ['get'] }],
  'system:basic-user': [
    rule(['authorization.k8s.io'], ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'], ['create']),
    rule(['authentication.k8s.io'], ['selfsubjectreviews'], ['create']),
  ],
  'system:public-info-viewer': [{ nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'], verbs: ['get'] }],
};

export const BOOTSTRAP_CLUSTER_ROLE_BINDINGS: { name: string; role: string; groups: string[] }[] = [
  { name: 'cluster-admin', role: 'cluster-admin', groups: ['system:masters'] },
  { name: 'system:discovery', role: 'system:discovery', groups: ['system:authenticated'] },
  { name: 'system:basic-user', role: 'system:basic-user', groups: ['system:authenticated'] },
  { name: 'system:public-info-viewer', role: 'system:public-info-viewer', groups: ['system:authenticated', 'system:unauthenticated'] },
];

const KEY = (resource: string, name: string): string => `/registry/${resource}.rbac.authorization.k8s.io/${name}`;

function meta(name: string): Json {
  return {
    name, uid: randomUUID(), creationTimestamp: nowRfc3339(), generation: 1,
    labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' },
    annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' },
  };
}

async function ensure(store: Store, key: string, obj: Json): Promise<void> {
  try { await store.create(key, obj); } catch (e) { if (!isStoreError(e, 'AlreadyExists')) throw e; }
}

export async function bootstrapRbac(store: Store): Promise<void> {
  for (const [name, rules] of Object.entries(BOOTSTRAP_CLUSTER_ROLES)) {
    await ensure(store, KEY('clusterroles', name), { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(name), rules });
  }
  for (const src of AGGREGATE_SOURCES) {
    const m = meta(src.name);
    m.labels = { ...(m.labels as Record<string, string>), ...Object.fromEntries(src.labels.map((l) => [AGGREGATE_TO(l), 'true'])) };
    await ensure(store, KEY('clusterroles', src.name), { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: m, rules: src.rules });
  }
  for (const [name, label] of Object.entries(AGGREGATED_CLUSTER_ROLES)) {
    const aggregationRule = { clusterRoleSelectors: [{ matchLabels: { [label]: 'true' } }] };
    const key = KEY('clusterroles', name);
    await ensure(store, key, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(name), aggregationRule, rules: [] });
    // A store from before aggregation holds these roles flat: give them their rule (Kubernetes
    // reconciles the defaults it may auto-update the same way).
    const cur = await store.get(key);
    if (cur && !cur.aggregationRule && (getPath(cur, 'metadata.annotations') as Record<string, string> | undefined)?.['rbac.authorization.kubernetes.io/autoupdate'] === 'true') {
      try { await store.update(key, { ...cur, aggregationRule }, Number(getPath(cur, 'metadata.resourceVersion'))); } catch (e) { if (!isStoreError(e, 'Conflict')) throw e; }
    }
  }
  for (const b of BOOTSTRAP_CLUSTER_ROLE_BINDINGS) {
    await ensure(store, KEY('clusterrolebindings', b.name), {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: meta(b.name),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: b.role },
      subjects: b.groups.map((g) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: g })),
    });
  }
}
