// Istio's mapping of AuthorizationPolicy values to Envoy RBAC principals and permissions
// (pilot/pkg/security/authz/model): SPIFFE principals with `*` prefix/suffix forms,
// namespaces as a regex over the principal, CIDRs, header and path string matchers.
import type { Json } from '../xds/generators/envoy.js';

export type Principal = Json;
export type Permission = Json;

const quote = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Istio's StringMatcherWithPrefix: `*` any, `*x` suffix, `x*` prefix, else exact. */
export function stringMatcher(v: string, prefix = '', ignoreCase = false): Json {
  const ic = ignoreCase ? { ignoreCase: true } : {};
  if (v === '*') return { safeRegex: { regex: `${quote(prefix)}.+` } };
  if (v.startsWith('*')) {
    return prefix ? { safeRegex: { regex: `${quote(prefix)}.*${quote(v.slice(1))}` } } : { suffix: v.slice(1), ...ic };
  }
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1), ...ic };
  return { exact: prefix + v, ...ic };
}

export const principalName = (v: string): Principal => ({ authenticated: { principalName: stringMatcher(v, 'spiffe://') } });

/** `.*\/ns/<ns>/.*` over the SPIFFE principal; `*` in the namespace matches any run. */
export function namespacePrincipal(ns: string): Principal {
  const re = ns.split('*').map(quote).join('.*');
  return { authenticated: { principalName: { safeRegex: { regex: `.*/ns/${re}/.*` } } } };
}

/** A service account `<ns>/<sa>` (or `<sa>` of `defaultNs`) as the SPIFFE principal of any trust domain. */
export function serviceAccountPrincipal(v: string, defaultNs: string): Principal {
  const [ns, sa] = v.includes('/') ? v.split('/', 2) : [defaultNs, v];
  return { authenticated: { principalName: { safeRegex: { regex: `spiffe://[^/]+/ns/${quote(ns)}/sa/${quote(sa)}` } } } };
}

/** `10.0.0.0/8` or a bare address (a /32 or /128). Undefined when malformed. */
export function cidr(v: string): { addressPrefix: string; prefixLen: { value: number } } | undefined {
  const [addr, len] = v.split('/');
  const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(addr) && addr.split('.').every((o) => Number(o) <= 255);
  const v6 = !v4 && /^[0-9a-fA-F:]+$/.test(addr) && addr.includes(':');
  if (!v4 && !v6) return undefined;
  const max = v4 ? 32 : 128;
  const n = len === undefined ? max : Number(len);
  if (!/^\d+$/.test(len ?? String(max)) || n > max) return undefined;
  return { addressPrefix: addr, prefixLen: { value: n } };
}

export const header = (name: string, v: string, ignoreCase = false): Json => ({ header: { name, stringMatch: stringMatcher(v, '', ignoreCase) } });

export const orIds = (ids: Principal[]): Principal => ({ orIds: { ids } });
export const orRules = (rules: Permission[]): Permission => ({ orRules: { rules } });
export const notId = (id: Principal): Principal => ({ notId: id });
export const notRule = (rule: Permission): Permission => ({ notRule: rule });
export const NEVER_ID: Principal = { notId: { any: true } };
export const NEVER_RULE: Permission = { notRule: { any: true } };
