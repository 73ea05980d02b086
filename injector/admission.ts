// AdmissionReview (admission.k8s.io/v1) in, AdmissionReview out: the protocol half of the
// webhook, independent of HTTP so it can be reasoned about (and tested) on its own.
import type { Pod } from '../api/kube/index.js';
import { inject, injectionDecision, type NamespaceInfo } from './inject.js';
import type { TemplateValues } from './template.js';
import { InjectionError } from './traffic-annotations.js';
import { TemplateError, type ParsedTemplate } from './templater.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface AdmissionRequest {
  uid: string;
  kind?: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation?: string;
  object?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: string;
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

/** A request the webhook cannot even answer (answered with HTTP 400, not an AdmissionReview). */
export class BadReviewError extends Error {}

export interface ReviewOutcome {
  review: AdmissionReview;
  /** What happened, for the log line. */
  summary: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asPod(v: unknown): Pod | undefined {
  if (!isObject(v) || !isObject(v.metadata) || !isObject(v.spec) || !Array.isArray(v.spec.containers)) return undefined;
  return v as unknown as Pod;
}

export function parseReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw new BadReviewError('AdmissionReview: body is not a JSON object');
  if (body.kind !== 'AdmissionReview') throw new BadReviewError(`AdmissionReview: kind is ${JSON.stringify(body.kind)}, want "AdmissionReview"`);
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    throw new BadReviewError(`AdmissionReview: apiVersion ${JSON.stringify(body.apiVersion)} is not supported, want "${ADMISSION_API_VERSION}"`);
  }
  const req = body.request;
  if (!isObject(req)) throw new BadReviewError('AdmissionReview: request is missing');
  if (typeof req.uid !== 'string' || req.uid === '') throw new BadReviewError('AdmissionReview: request.uid is missing');
  return req as unknown as AdmissionRequest;
}

function respond(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

/** Answers one admission request for pod injection. */
export function reviewPod(req: AdmissionRequest, values: TemplateValues, template?: ParsedTemplate): ReviewOutcome {
  const allow = (summary: string): ReviewOutcome => ({ review: respond({ uid: req.uid, allowed: true }), summary });
  const isPod = (req.kind?.kind ?? 'Pod') === 'Pod' && (req.resource?.resource ?? 'pods') === 'pods' && !req.subResource;
  if (!isPod) return allow(`not a pod (${req.resource?.resource ?? req.kind?.kind}), allowed unchanged`);
  if (req.operation !== undefined && req.operation !== 'CREATE') return allow(`operation ${req.operation}, allowed unchanged`);
  const pod = asPod(req.object);
  if (!pod) {
    return {
      review: respond({ uid: req.uid, allowed: false, status: { code: 400, reason: 'BadRequest', message: 'request.object is not a Pod (metadata, spec.containers required)' } }),
      summary: 'rejected: request.object is not a pod',
    };
  }
  // At CREATE a generated pod has no name and may have no namespace yet; the request has both.
  const namespace = req.namespace ?? pod.metadata.namespace ?? 'default';
  const ns: NamespaceInfo = { name: namespace };
  const who = `${namespace}/${pod.metadata.name || req.name || `${pod.metadata.generateName ?? ''}*`}`;
  try {
    const ops = inject(pod, ns, values, template);
    if (ops.length === 0) return allow(`${who}: skipped: ${injectionDecision(pod, ns, values).reason}`);
    const patch = Buffer.from(JSON.stringify(ops)).toString('base64');
    return { review: respond({ uid: req.uid, allowed: true, patchType: 'JSONPatch', patch }), summary: `${who}: injected (${ops.length} patch ops)` };
  } catch (e) {
    // Only pods being injected get here: a template that cannot render refuses them alone.
    if (!(e instanceof InjectionError || e instanceof TemplateError)) throw e;
    return {
      review: respond({ uid: req.uid, allowed: false, status: { code: 400, reason: 'BadRequest', message: `injection of pod ${who} failed: ${e.message}` } }),
      summary: `${who}: rejected: ${e.message}`,
    };
  }
}
