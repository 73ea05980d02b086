// RBAC policy rules and subjects, matched the way Kubernetes' rbac authorizer does
// (plugin/pkg/auth/authorizer/rbac/rbac.go and pkg/apis/rbac/v1/evaluation_helpers.go).
import type { UserInfo } from '../authn.js';
import type { Attributes } from '../authz.js';
import { isObj, type Json } from '../util.js';

export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface Subject { kind: string; name: string; namespace?: string; apiGroup?: string }

export interface RoleRef { apiGroup?: string; kind: string; name: string }

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

export function rulesOf(role: Json | undefined): PolicyRule[] {
  if (!role || !Array.isArray(role.rules)) return [];
  return role.rules.filter(isObj).map((r) => ({
    verbs: strings(r.verbs), apiGroups: strings(r.apiGroups), resources: strings(r.resources),
    resourceNames: strings(r.resourceNames), nonResourceURLs: strings(r.nonResourceURLs),
  }));
}

export function subjectsOf(binding: Json): Subject[] {
  if (!Array.isArray(binding.subjects)) return [];
  return binding.subjects.filter(isObj).map((s) => ({
    kind: String(s.kind ?? ''), name: String(s.name ?? ''),
    namespace: typeof s.namespace === 'string' ? s.namespace : undefined,
    apiGroup: typeof s.apiGroup === 'string' ? s.apiGroup : undefined,
  }));
}

export function roleRefOf(binding: Json): RoleRef | undefined {
  const r = binding.roleRef;
  if (!isObj(r) || typeof r.kind !== 'string' || typeof r.name !== 'string') return undefined;
  return { apiGroup: typeof r.apiGroup === 'string' ? r.apiGroup : undefined, kind: r.kind, name: r.name };
}

/**
 * Does a binding subject name this user? A ServiceAccount subject without a namespace
 * takes the binding's own (RoleBinding) namespace, as Kubernetes' validation defaults it.
 */
export function appliesTo(user: UserInfo, s: Subject, bindingNamespace: string): boolean {
  switch (s.kind) {
    case 'User': return user.username === s.name;
    case 'Group': return user.groups.includes(s.name);
    case 'ServiceAccount': {
      const ns = s.namespace || bindingNamespace;
      return ns !== '' && user.username === `system:serviceaccount:${ns}:${s.name}`;
    }
    default: return false;
  }
}

const has = (list: string[] | undefined, v: string): boolean => !!list && (list.includes('*') || list.includes(v));

function resourceMatches(rule: PolicyRule, resource: string, subresource: string): boolean {
  const rs = rule.resources ?? [];
  const combined = subresource ? `${resource}/${subresource}` : resource;
  for (const r of rs) {
    if (r === '*' || r === combined) return true;
    // "*/status" grants the status subresource of every resource.
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

function urlMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === '*' || u === path) return true;
    if (u.endsWith('*') && path.startsWith(u.slice(0, -1))) return true;
  }
  return false;
}

export function ruleAllows(a: Attributes, rule: PolicyRule): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (!a.resourceRequest) return urlMatches(rule, a.path);
  if (!has(rule.apiGroups, a.apiGroup)) return false;
  if (!resourceMatches(rule, a.resource, a.subresource)) return false;
  const names = rule.resourceNames ?? [];
  // resourceNames restrict to named objects; a request without a name (list, create) never matches them.
  return names.length === 0 || (a.name !== '' && names.includes(a.name));
}
