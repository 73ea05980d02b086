// authorization.k8s.io/v1: the access reviews (create-only, never stored). `kubectl auth
// can-i` posts a SelfSubjectAccessReview; `--list` posts a SelfSubjectRulesReview.
import type { UserInfo } from '../authn.js';
import type { Attributes, Decision } from '../authz.js';
import { badRequest } from '../errors.js';
import type { KindInfo } from '../registry/types.js';
import type { PolicyRule } from '../rbac/rules.js';
import { getPath, isObj, str, type Json } from '../util.js';
import { kind } from './common.js';

export interface AccessReviewDeps {
  authorize(user: UserInfo, a: Attributes): Promise<Decision> | Decision;
  /** The rules a user holds in a namespace (RBAC mode); undefined = rules cannot be listed. */
  rulesFor?(user: UserInfo, namespace: string): Iterable<{ rule: PolicyRule }>;
}

function attributesOf(spec: Json, forceNamespace?: string): Attributes {
  const ra = spec.resourceAttributes;
  const nra = spec.nonResourceAttributes;
  if (isObj(ra)) {
    return {
      verb: str(ra.verb) ?? '', apiGroup: str(ra.group) ?? '', apiVersion: str(ra.version) ?? '', resource: str(ra.resource) ?? '',
      subresource: str(ra.subresource) ?? '', namespace: forceNamespace ?? str(ra.namespace) ?? '', name: str(ra.name) ?? '',
      resourceRequest: true, path: '',
    };
  }
  if (isObj(nra)) {
    return { verb: str(nra.verb) ?? '', apiGroup: '', apiVersion: '', resource: '', subresource: '', namespace: '', name: '', resourceRequest: false, path: str(nra.path) ?? '' };
  }
  throw badRequest('exactly one of spec.resourceAttributes or spec.nonResourceAttributes must be set');
}

function userFromSpec(spec: Json): UserInfo {
  const groups = Array.isArray(spec.groups) ? spec.groups.map(String) : [];
  const extra: Record<string, string[]> = {};
  if (isObj(spec.extra)) for (const [k, v] of Object.entries(spec.extra)) if (Array.isArray(v)) extra[k] = v.map(String);
  return { username: str(spec.user) ?? '', uid: str(spec.uid), groups, extra };
}

async function review(deps: AccessReviewDeps, obj: Json, user: UserInfo, forceNamespace?: string): Promise<Json> {
  const spec = isObj(obj.spec) ? obj.spec : {};
  const d = await deps.authorize(user, attributesOf(spec, forceNamespace));
  const status: Json = { allowed: d.allowed };
  if (d.reason) status.reason = d.reason;
  const { status: _ignored, ...rest } = obj;
  return { ...rest, metadata: isObj(obj.metadata) ? obj.metadata : {}, status };
}

function rulesReview(deps: AccessReviewDeps, obj: Json, user: UserInfo): Json {
  const namespace = String(getPath(obj, 'spec.namespace') ?? '');
  const resourceRules: Json[] = [];
  const nonResourceRules: Json[] = [];
  for (const { rule } of deps.rulesFor?.(user, namespace) ?? []) {
    if (rule.nonResourceURLs?.length) nonResourceRules.push({ verbs: rule.verbs, nonResourceURLs: rule.nonResourceURLs });
    if (rule.resources?.length) {
      const r: Json = { verbs: rule.verbs, apiGroups: rule.apiGroups ?? [], resources: rule.resources };
      if (rule.resourceNames?.length) r.resourceNames = rule.resourceNames;
      resourceRules.push(r);
    }
  }
  const status: Json = { resourceRules, nonResourceRules, incomplete: !deps.rulesFor };
  if (!deps.rulesFor) status.evaluationError = 'the authorizer in use cannot list rules';
  return { ...obj, metadata: isObj(obj.metadata) ? obj.metadata : {}, status };
}

export function authorizationKinds(deps: AccessReviewDeps): KindInfo[] {
  const g = 'authorization.k8s.io';
  return [
    kind({ group: g, version: 'v1', resource: 'selfsubjectaccessreviews', kind: 'SelfSubjectAccessReview', namespaced: false, verbs: ['create'],
      strategy: { virtualCreate: (obj, ctx) => review(deps, obj, ctx.user) } }),
    kind({ group: g, version: 'v1', resource: 'subjectaccessreviews', kind: 'SubjectAccessReview', namespaced: false, verbs: ['create'],
      strategy: { virtualCreate: (obj) => review(deps, obj, userFromSpec(isObj(obj.spec) ? obj.spec : {})) } }),
    kind({ group: g, version: 'v1', resource: 'localsubjectaccessreviews', kind: 'LocalSubjectAccessReview', verbs: ['create'],
      strategy: {
        virtualCreate(obj, ctx) {
          const ns = ctx.namespace ?? '';
          const specNs = getPath(obj, 'spec.resourceAttributes.namespace');
          if (specNs !== undefined && specNs !== '' && specNs !== ns) throw badRequest(`spec.resourceAttributes.namespace must match the namespace of the request (${ns})`);
          return review(deps, obj, userFromSpec(isObj(obj.spec) ? obj.spec : {}), ns);
        },
      } }),
    kind({ group: g, version: 'v1', resource: 'selfsubjectrulesreviews', kind: 'SelfSubjectRulesReview', namespaced: false, verbs: ['create'],
      strategy: { virtualCreate: async (obj, ctx) => rulesReview(deps, obj, ctx.user) } }),
  ];
}
