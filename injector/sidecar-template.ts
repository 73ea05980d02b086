// The injection template: what an injected pod gets (the init container, the proxy, volumes,
// labels and annotations), as YAML with placeholders (see templater.ts). It lives in the
// ConfigMap istio-sidecar-injector under the key `template` (install/04-injector.yaml holds
// the same text as DEFAULT_TEMPLATE); this file gives the placeholders their values for a
// pod and checks the rendered shape.
import type { Container, Pod, Volume } from '../api/kube/index.js';
import { APP_PROBERS_ENV } from '../api/security/app-probers.js';
import type { ProbeRewrite } from './probes.js';
import { proxyMetadata } from './proxy-config.js';
import type { TemplateValues } from './template.js';
import { defaultTemplateValues } from './template.js';
import { parseTemplate, renderTemplate, TemplateError, type ParsedTemplate, type TemplateValue } from './templater.js';
import { iptablesArgs } from './traffic-annotations.js';
import { workloadName } from './workload.js';

export const TEMPLATE_DATA_KEY = 'template';

export const DEFAULT_TEMPLATE = `# The injection template. Placeholders are quoted: "{{ name }}" is replaced by the value
# (keeping its type), text around placeholders is interpolated, and a list item
# "{{ ...name }}" spreads a list. Names: values.<field> (the ConfigMap's values), pod.name,
# pod.namespace, pod.serviceAccountName, workloadName, canonicalName, canonicalRevision,
# podLabelsJson, iptablesArgs, appProbersEnv, proxyMetadataEnv.
initContainers:
# Writing iptables rules needs root with NET_ADMIN/NET_RAW and nothing more (Istio's
# istio-init): every other capability dropped, never privileged.
- name: istio-init
  image: "{{ values.proxyImage }}"
  args: "{{ iptablesArgs }}"
  securityContext:
    runAsUser: 0
    runAsNonRoot: false
    privileged: false
    capabilities:
      add: [NET_ADMIN, NET_RAW]
      drop: [ALL]
# A native sidecar (restartPolicy Always): started before, and stopped after, the app.
- name: istio-proxy
  image: "{{ values.proxyImage }}"
  args: [proxy, sidecar]
  restartPolicy: Always
  ports:
  - name: http-envoy-prom
    containerPort: "{{ values.prometheusPort }}"
    protocol: TCP
  env:
  - name: POD_NAME
    valueFrom:
      fieldRef: { apiVersion: v1, fieldPath: metadata.name }
  - name: POD_NAMESPACE
    valueFrom:
      fieldRef: { apiVersion: v1, fieldPath: metadata.namespace }
  - name: INSTANCE_IP
    valueFrom:
      fieldRef: { apiVersion: v1, fieldPath: status.podIP }
  - name: SERVICE_ACCOUNT
    valueFrom:
      fieldRef: { apiVersion: v1, fieldPath: spec.serviceAccountName }
  - name: PILOT_ADDRESS
    value: "{{ values.pilotAddress }}"
  - name: CA_ADDR
    value: "{{ values.caAddress }}"
  - name: TRUST_DOMAIN
    value: "{{ values.trustDomain }}"
  - name: CLUSTER_ID
    value: "{{ values.clusterId }}"
  - name: ISTIO_META_WORKLOAD_NAME
    value: "{{ workloadName }}"
  - name: ISTIO_META_CLUSTER_ID
    value: "{{ values.clusterId }}"
  - name: ISTIO_META_ISTIO_VERSION
    value: "{{ values.proxyVersion }}"
  - name: TRELLIS_POD_LABELS
    value: "{{ podLabelsJson }}"
  - "{{ ...appProbersEnv }}"
  # proxy.istio.io/config proxyMetadata: the pod's own agent settings (e.g. SECRET_TTL).
  - "{{ ...proxyMetadataEnv }}"
  # The app starts only once this passes (native sidecar): probe often, as Istio does.
  startupProbe:
    httpGet: { path: /healthz/ready, port: "{{ values.statusPort }}" }
    periodSeconds: 1
    timeoutSeconds: 3
    failureThreshold: 600
  readinessProbe:
    httpGet: { path: /healthz/ready, port: "{{ values.statusPort }}" }
    initialDelaySeconds: 0
    periodSeconds: 2
    timeoutSeconds: 3
    failureThreshold: 4
  volumeMounts:
  - { name: istio-token, mountPath: /var/run/secrets/tokens, readOnly: true }
  - { name: istiod-ca-cert, mountPath: /var/run/secrets/istio, readOnly: true }
  # UID 1337 is what the interception rules exempt, so the proxy's own traffic is not captured.
  securityContext:
    runAsUser: "{{ values.proxyUid }}"
    runAsGroup: "{{ values.proxyGid }}"
containers: []
# The sidecar's identity inputs, at Istio's paths: a token only the mesh CA accepts (audience
# istio-ca, so it cannot be replayed against the API server) and the CA's root.
volumes:
- name: istio-token
  projected:
    sources:
    - serviceAccountToken: { path: istio-token, audience: istio-ca, expirationSeconds: 43200 }
- name: istiod-ca-cert
  configMap: { name: istio-ca-root-cert }
# Added to the pod's labels (automatic mTLS keys on tlsMode).
labels:
  security.istio.io/tlsMode: istio
  service.istio.io/canonical-name: "{{ canonicalName }}"
  service.istio.io/canonical-revision: "{{ canonicalRevision }}"
annotations: {}
`;

const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';
const SECTIONS = ['initContainers', 'containers', 'volumes', 'labels', 'annotations'] as const;

/** Every placeholder name a template may use. */
export const PLACEHOLDERS: ReadonlySet<string> = new Set([
  ...Object.keys(defaultTemplateValues()).map((k) => `values.${k}`),
  'pod.name', 'pod.namespace', 'pod.serviceAccountName',
  'workloadName', 'canonicalName', 'canonicalRevision', 'podLabelsJson',
  'iptablesArgs', 'appProbersEnv', 'proxyMetadataEnv',
]);

/** What the template adds to one pod. */
export interface RenderedSidecar {
  initContainers: Container[];
  containers: Container[];
  volumes: Volume[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function parseSidecarTemplate(text: string, source: string): ParsedTemplate {
  const t = parseTemplate(text, source, PLACEHOLDERS);
  const tree = t.tree;
  if (tree === null || typeof tree !== 'object' || Array.isArray(tree)) throw new TemplateError(`${source}: must be a map with ${SECTIONS.join(', ')}`);
  for (const key of Object.keys(tree)) {
    if (!(SECTIONS as readonly string[]).includes(key)) throw new TemplateError(`${source} line ${t.lineOf([key]) ?? '?'}: unknown section ${key} (known: ${SECTIONS.join(', ')})`);
  }
  return t;
}

let builtIn: ParsedTemplate | undefined;

/** The built-in template (the same text install/ puts in the ConfigMap). */
export function defaultSidecarTemplate(): ParsedTemplate {
  builtIn ??= parseSidecarTemplate(DEFAULT_TEMPLATE, 'built-in injection template');
  return builtIn;
}

function fail(t: ParsedTemplate, path: (string | number)[], msg: string): never {
  const line = t.lineOf(path);
  throw new TemplateError(`${t.source}${line ? ` line ${line}` : ''}: ${path.join('.')}: ${msg}`);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function namedList(t: ParsedTemplate, section: string, v: TemplateValue | undefined, needImage: boolean): TemplateValue[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(t, [section], 'must be a list');
  v.forEach((item, i) => {
    if (!isMap(item)) fail(t, [section, i], 'must be a map');
    if (typeof item.name !== 'string' || item.name === '') fail(t, [section, i, 'name'], 'must be a non-empty string');
    if (needImage && (typeof item.image !== 'string' || item.image === '')) fail(t, [section, i, 'image'], 'must be a non-empty string');
  });
  return v;
}

function stringMap(t: ParsedTemplate, section: string, v: TemplateValue | undefined): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isMap(v)) fail(t, [section], 'must be a map of strings');
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') fail(t, [section, k], `must be a string, got ${JSON.stringify(x)}`);
  return v as Record<string, string>;
}

/**
 * Renders the template for a pod (generateName pods have no name yet: pod.name is ''). Throws InjectionError for a bad pod annotation and
 * TemplateError when the template does not produce a usable shape.
 */
export function renderSidecar(t: ParsedTemplate, pod: Pod, values: TemplateValues, probes: ProbeRewrite | undefined, namespace?: string): RenderedSidecar {
  const labels = pod.metadata.labels ?? {};
  const ctx: Record<string, TemplateValue> = {
    'pod.name': pod.metadata.name ?? '',
    // At CREATE the pod may not carry its namespace yet; the admission request has it.
    'pod.namespace': namespace ?? pod.metadata.namespace ?? '',
    'pod.serviceAccountName': pod.spec.serviceAccountName ?? 'default',
    workloadName: workloadName(pod),
    // Existing canonical labels are kept, as in Istio's template.
    canonicalName: labels[CANONICAL_NAME_LABEL] ?? labels['app.kubernetes.io/name'] ?? labels.app ?? workloadName(pod),
    canonicalRevision: labels[CANONICAL_REVISION_LABEL] ?? labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest',
    iptablesArgs: iptablesArgs(pod.metadata.annotations ?? {}, values),
    appProbersEnv: probes ? [{ name: APP_PROBERS_ENV, value: JSON.stringify(probes.probers) }] : [],
    proxyMetadataEnv: Object.entries(proxyMetadata(pod)).map(([name, value]) => ({ name, value })),
  };
  for (const [k, v] of Object.entries(values)) ctx[`values.${k}`] = v as TemplateValue;
  const tree = t.tree as Record<string, TemplateValue>;
  // Labels first: the proxy is told the pod's final labels (TRELLIS_POD_LABELS).
  const added = stringMap(t, 'labels', tree.labels === undefined ? undefined : renderTemplate(t, ctx, tree.labels, ['labels']));
  ctx.podLabelsJson = JSON.stringify({ ...labels, ...added });
  const section = (name: string): TemplateValue | undefined => (tree[name] === undefined ? undefined : renderTemplate(t, ctx, tree[name], [name]));
  return {
    initContainers: namedList(t, 'initContainers', section('initContainers'), true) as unknown as Container[],
    containers: namedList(t, 'containers', section('containers'), true) as unknown as Container[],
    volumes: namedList(t, 'volumes', section('volumes'), false) as unknown as Volume[],
    labels: added,
    annotations: stringMap(t, 'annotations', section('annotations')),
  };
}

/** A pod with every kind of input, rendered once when a template is loaded to catch mistakes early. */
export const SAMPLE_POD: Pod = {
  metadata: { name: 'template-check', namespace: 'default', labels: { app: 'template-check' }, annotations: {} },
  spec: { serviceAccountName: 'default', containers: [{ name: 'app', image: 'example/app', readinessProbe: { httpGet: { path: '/', port: 8080 } } }] },
};
