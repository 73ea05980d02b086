// The injection itself: a pure function from (pod, namespace, template values, template) to
// the JSONPatch that adds what the template renders (by default the interception init
// container and the proxy as a native sidecar; see sidecar-template.ts).
import type { Pod } from '../api/kube/index.js';
import { escapePointerToken, type JsonPatchOp } from './jsonpatch.js';
import type { TemplateValues } from './template.js';
import { rewriteEnabled, rewriteProbes } from './probes.js';
import { defaultSidecarTemplate, renderSidecar, type RenderedSidecar } from './sidecar-template.js';
import type { ParsedTemplate } from './templater.js';

export const INJECT_ANNOTATION = 'sidecar.istio.io/inject';
export const STATUS_ANNOTATION = 'sidecar.istio.io/status';
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
export const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
export const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';
export const INIT_CONTAINER_NAME = 'istio-init';
export const PROXY_CONTAINER_NAME = 'istio-proxy';
export const TOKEN_VOLUME = 'istio-token';
export const ROOT_CERT_VOLUME = 'istiod-ca-cert';

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

/** The value of sidecar.istio.io/status, shaped like Istio's: what the template added. */
export function statusAnnotation(values: TemplateValues, added: Pick<RenderedSidecar, 'initContainers' | 'containers' | 'volumes'>): string {
  return JSON.stringify({
    initContainers: added.initContainers.map((c) => c.name),
    containers: added.containers.map((c) => c.name),
    volumes: added.volumes.map((v) => v.name),
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
 * Throws InjectionError when a pod annotation is invalid, TemplateError when the template
 * cannot render for this pod (both refuse only this pod).
 */
export function inject(pod: Pod, ns: NamespaceInfo, values: TemplateValues, template: ParsedTemplate = defaultSidecarTemplate()): JsonPatchOp[] {
  if (!injectionDecision(pod, ns, values).inject) return [];
  const ops: JsonPatchOp[] = [];
  const probes = rewriteEnabled(pod, values.rewriteAppProbes) ? rewriteProbes(pod, values.statusPort) : undefined;
  const added = renderSidecar(template, pod, values, probes, ns.name);

  // The template's init containers go after the pod's own (so they run before traffic is
  // captured), the native sidecar last, as Istio orders them; its containers after the app's.
  appendAll(ops, '/spec/initContainers', pod.spec.initContainers, added.initContainers);
  appendAll(ops, '/spec/containers', pod.spec.containers, added.containers);

  pod.spec.containers.forEach((c, i) => {
    const rewritten = probes?.containers[i];
    for (const field of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
      if (rewritten?.[field] !== undefined && rewritten[field] !== c[field]) ops.push({ op: 'replace', path: `/spec/containers/${i}/${field}`, value: rewritten[field] });
    }
  });

  appendAll(ops, '/spec/volumes', pod.spec.volumes, added.volumes);
  addToMap(ops, '/metadata/annotations', pod.metadata.annotations, { ...added.annotations, [STATUS_ANNOTATION]: statusAnnotation(values, added) });
  if (Object.keys(added.labels).length) addToMap(ops, '/metadata/labels', pod.metadata.labels, added.labels);
  return ops;
}

/** Appends items to the list at `path` (created whole when the list is absent). */
function appendAll(ops: JsonPatchOp[], path: string, existing: unknown[] | undefined, items: unknown[]): void {
  if (!items.length) return;
  if (existing === undefined) ops.push({ op: 'add', path, value: items });
  else for (const v of items) ops.push({ op: 'add', path: `${path}/-`, value: v });
}
