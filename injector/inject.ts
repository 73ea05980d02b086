// The injection itself: a pure function from (pod, namespace, template values) to the
// JSONPatch that adds the interception init container and the proxy as a native sidecar.
import type { Container, Pod, Volume } from '../api/kube/index.js';
import { escapePointerToken, type JsonPatchOp } from './jsonpatch.js';
import type { TemplateValues } from './template.js';
import { iptablesArgs } from './traffic-annotations.js';
import { workloadName } from './workload.js';
import { rewriteEnabled, rewriteProbes, type ProbeRewrite } from './probes.js';
import { APP_PROBERS_ENV } from '../api/security/app-probers.js';
import { proxyMetadata } from './proxy-config.js';

export const INJECT_ANNOTATION = 'sidecar.istio.io/inject';
export const STATUS_ANNOTATION = 'sidecar.istio.io/status';
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
export const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
export const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';
export const INIT_CONTAINER_NAME = 'istio-init';
export const PROXY_CONTAINER_NAME = 'istio-proxy';
export const TOKEN_VOLUME = 'istio-token';
export const ROOT_CERT_VOLUME = 'istiod-ca-cert';

/**
 * The sidecar's identity inputs, at Istio's paths: a token only the mesh CA accepts
 * (audience istio-ca, so it cannot be replayed against the API server) and the CA's root.
 */
function identityVolumes(): Volume[] {
  return [
    { name: TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken: { path: 'istio-token', audience: 'istio-ca', expirationSeconds: 43200 } }] } },
    { name: ROOT_CERT_VOLUME, configMap: { name: 'istio-ca-root-cert' } },
  ];
}

export interface NamespaceInfo {
  name: string;
  labels?: Record<string, string>;
}

export interface InjectionDecision {
  inject: boolean;
  reason: string;
}

/** Whether the pod gets a sidecar, following Istio's injectRequired order. */
export function injectionDecision(pod: Pod, ns: NamespaceInfo, values: TemplateValues): InjectionDecision {
  if (pod.spec.hostNetwork) return { inject: false, reason: 'hostNetwork pods are not injected' };
  if (values.ignoredNamespaces.includes(ns.name)) return { inject: false, reason: `namespace ${ns.name} is never injected` };
  const annotations = pod.metadata.annotations ?? {};
  if (annotations[STATUS_ANNOTATION] !== undefined) return { inject: false, reason: `already injected (${STATUS_ANNOTATION} present)` };
  if (pod.spec.containers.some((c) => c.name === PROXY_CONTAINER_NAME) || pod.spec.initContainers?.some((c) => c.name === PROXY_CONTAINER_NAME)) {
    return { inject: false, reason: `already has a container named ${PROXY_CONTAINER_NAME}` };
  }
  // The label overrides the annotation (Istio); only "true"/"false" mean anything.
  const label = pod.metadata.labels?.[INJECT_ANNOTATION];
  const annotation = annotations[INJECT_ANNOTATION];
  const explicit = label === 'true' || label === 'false' ? label : annotation;
  if (explicit === 'false') return { inject: false, reason: `pod opted out (${INJECT_ANNOTATION}: "false")` };
  if (explicit !== 'true' && ns.labels?.['istio-injection'] === 'disabled') {
    return { inject: false, reason: `namespace ${ns.name} has istio-injection=disabled` };
  }
  return { inject: true, reason: 'injected' };
}

function fieldRefEnv(name: string, fieldPath: string): NonNullable<Container['env']>[number] {
  return { name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } };
}

function initContainer(pod: Pod, values: TemplateValues): Container {
  return {
    name: INIT_CONTAINER_NAME,
    image: values.proxyImage,
    args: iptablesArgs(pod.metadata.annotations ?? {}, values),
    // Writing iptables rules needs root with NET_ADMIN/NET_RAW and nothing more (Istio's
    // istio-init): every other capability dropped, never privileged.
    securityContext: { runAsUser: 0, runAsNonRoot: false, privileged: false, capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] } },
  };
}

function proxyContainer(pod: Pod, finalLabels: Record<string, string>, values: TemplateValues, probes: ProbeRewrite | undefined): Container {
  return {
    name: PROXY_CONTAINER_NAME,
    image: values.proxyImage,
    args: ['proxy', 'sidecar'],
    // A native sidecar: started before, and stopped after, the app containers.
    restartPolicy: 'Always',
    ports: [{ name: 'http-envoy-prom', containerPort: values.prometheusPort, protocol: 'TCP' }],
    env: [
      fieldRefEnv('POD_NAME', 'metadata.name'),
      fieldRefEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldRefEnv('INSTANCE_IP', 'status.podIP'),
      fieldRefEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
      { name: 'PILOT_ADDRESS', value: values.pilotAddress },
      { name: 'CA_ADDR', value: values.caAddress },
      { name: 'TRUST_DOMAIN', value: values.trustDomain },
      { name: 'CLUSTER_ID', value: values.clusterId },
      { name: 'ISTIO_META_WORKLOAD_NAME', value: workloadName(pod) },
      { name: 'ISTIO_META_CLUSTER_ID', value: values.clusterId },
      { name: 'ISTIO_META_ISTIO_VERSION', value: values.proxyVersion },
      { name: 'TRELLIS_POD_LABELS', value: JSON.stringify(finalLabels) },
      ...(probes ? [{ name: APP_PROBERS_ENV, value: JSON.stringify(probes.probers) }] : []),
      // proxy.istio.io/config proxyMetadata: the pod's own agent settings (e.g. SECRET_TTL).
      ...Object.entries(proxyMetadata(pod)).map(([name, value]) => ({ name, value })),
    ],
    // The app starts only once this passes (native sidecar): probe often, as Istio does,
    // so a ready proxy is noticed within a second.
    startupProbe: {
      httpGet: { path: '/healthz/ready', port: values.statusPort },
      periodSeconds: 1,
      timeoutSeconds: 3,
      failureThreshold: 600,
    },
    readinessProbe: {
      httpGet: { path: '/healthz/ready', port: values.statusPort },
      initialDelaySeconds: 0,
      periodSeconds: 2,
      timeoutSeconds: 3,
      failureThreshold: 4,
    },
    volumeMounts: [
      { name: TOKEN_VOLUME, mountPath: '/var/run/secrets/tokens', readOnly: true },
      { name: ROOT_CERT_VOLUME, mountPath: '/var/run/secrets/istio', readOnly: true },
    ],
    // UID 1337 is what the interception rules exempt, so the proxy's own traffic is not captured.
    securityContext: { runAsUser: values.proxyUid, runAsGroup: values.proxyGid },
  };
}

/** Labels the injector adds; existing canonical labels are kept, as in Istio's template. */
function injectedLabels(pod: Pod): Record<string, string> {
  const labels = pod.metadata.labels ?? {};
  return {
    [TLS_MODE_LABEL]: 'istio',
    [CANONICAL_NAME_LABEL]: labels[CANONICAL_NAME_LABEL] ?? labels['app.kubernetes.io/name'] ?? labels.app ?? workloadName(pod),
    [CANONICAL_REVISION_LABEL]: labels[CANONICAL_REVISION_LABEL] ?? labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest',
  };
}

/** The value of sidecar.istio.io/status, shaped like Istio's. */
export function statusAnnotation(values: TemplateValues): string {
  return JSON.stringify({
    initContainers: [INIT_CONTAINER_NAME, PROXY_CONTAINER_NAME],
    containers: [],
    volumes: [TOKEN_VOLUME, ROOT_CERT_VOLUME],
    imagePullSecrets: [],
    revision: values.revision,
  });
}

/** Adds the entries of `add` to the map at `path` (created whole when the map is absent). */
function addToMap(ops: JsonPatchOp[], path: string, existing: Record<string, string> | undefined, add: Record<string, string>): void {
  if (existing === undefined) {
    ops.push({ op: 'add', path, value: add });
    return;
  }
  // "add" on an existing member replaces it (RFC 6902 4.1), so this is safe either way.
  for (const [k, v] of Object.entries(add)) ops.push({ op: 'add', path: `${path}/${escapePointerToken(k)}`, value: v });
}

/**
 * The JSONPatch that injects the sidecar, or [] when the pod is not to be injected.
 * Idempotent: an injected pod carries the status annotation, so a second call yields [].
 * Throws InjectionError when a traffic annotation is invalid.
 */
export function inject(pod: Pod, ns: NamespaceInfo, values: TemplateValues): JsonPatchOp[] {
  if (!injectionDecision(pod, ns, values).inject) return [];
  const ops: JsonPatchOp[] = [];
  const newLabels = injectedLabels(pod);
  const finalLabels = { ...(pod.metadata.labels ?? {}), ...newLabels };

  // istio-init goes after the pod's own init containers (so they run before traffic is
  // captured), and the native sidecar last, as Istio orders them.
  const probes = rewriteEnabled(pod, values.rewriteAppProbes) ? rewriteProbes(pod, values.statusPort) : undefined;
  const added = [initContainer(pod, values), proxyContainer(pod, finalLabels, values, probes)];
  if (pod.spec.initContainers === undefined) {
    ops.push({ op: 'add', path: '/spec/initContainers', value: added });
  } else {
    for (const c of added) ops.push({ op: 'add', path: '/spec/initContainers/-', value: c });
  }

  pod.spec.containers.forEach((c, i) => {
    const rewritten = probes?.containers[i];
    for (const field of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
      if (rewritten?.[field] !== undefined && rewritten[field] !== c[field]) ops.push({ op: 'replace', path: `/spec/containers/${i}/${field}`, value: rewritten[field] });
    }
  });

  if (pod.spec.volumes === undefined) ops.push({ op: 'add', path: '/spec/volumes', value: identityVolumes() });
  else for (const v of identityVolumes()) ops.push({ op: 'add', path: '/spec/volumes/-', value: v });

  addToMap(ops, '/metadata/annotations', pod.metadata.annotations, { [STATUS_ANNOTATION]: statusAnnotation(values) });
  addToMap(ops, '/metadata/labels', pod.metadata.labels, newLabels);
  return ops;
}
