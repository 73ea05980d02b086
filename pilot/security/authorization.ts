// AuthorizationPolicy -> Envoy RBAC filters for a workload's inbound chains, with Istio's
// evaluation order (a request is denied if a DENY policy matches, else allowed if there is
// no ALLOW policy or one matches; AUDIT only logs). Policies in the root namespace apply
// mesh-wide, the others to their namespace; a selector narrows either to matching workloads.
import { TYPE_URL } from '../../api/xds/protos.js';
import type { AuthorizationPolicy, AuthzCondition, AuthzOperation, AuthzRule, AuthzSource } from '../../api/istio/index.js';
import type { PushContext, Workload } from '../model/push-context.js';
import type { Json } from '../xds/generators/envoy.js';
import { byNamespace, hasSelector, policyKey, selects } from './selection.js';
import {
  NEVER_ID, NEVER_RULE, cidr, header, namespacePrincipal, notId, notRule, orIds, orRules, principalName, serviceAccountPrincipal, stringMatcher,
  type Permission, type Principal,
} from './rbac-matchers.js';

export const HTTP_RBAC = 'envoy.filters.http.rbac';
export const NETWORK_RBAC = 'envoy.filters.network.rbac';

type EnvoyAction = 'ALLOW' | 'DENY' | 'LOG';
interface RbacPolicy { permissions: Permission[]; principals: Principal[] }
export interface RbacRules { action: EnvoyAction; policies: Record<string, RbacPolicy> }

const HTTP_ONLY_OPERATION: (keyof AuthzOperation)[] = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'];
const HTTP_ONLY_SOURCE: (keyof AuthzSource)[] = ['requestPrincipals', 'notRequestPrincipals'];
const httpOnlyKey = (key: string): boolean => key.startsWith('request.');

/** The HTTP-only fields a rule uses (field paths relative to the rule), for TCP ports. */
export function httpOnlyFields(rule: AuthzRule): string[] {
  const out: string[] = [];
  (rule.from ?? []).forEach((f, i) => { for (const k of HTTP_ONLY_SOURCE) if (f.source?.[k]?.length) out.push(`from[${i}].source.${k}`); });
  (rule.to ?? []).forEach((t, i) => { for (const k of HTTP_ONLY_OPERATION) if (t.operation?.[k]?.length) out.push(`to[${i}].operation.${k}`); });
  (rule.when ?? []).forEach((c, i) => { if (httpOnlyKey(c.key ?? '')) out.push(`when[${i}] (${c.key})`); });
  return out;
}

/** Policies that apply to a workload, oldest first (root namespace, then its own). */
export function policiesFor(push: PushContext, w: Pick<Workload, 'namespace' | 'labels'>): AuthorizationPolicy[] {
  const byNs = apIndex(push);
  const root = push.security.rootNamespace;
  const scopes = w.namespace === root ? [root] : [root, w.namespace];
  return scopes.flatMap((ns) => (byNs.get(ns) ?? []).filter((p) => selects(p, w.labels)))
    .filter((p) => !p.spec.targetRef && !p.spec.targetRefs?.length && (p.spec.action ?? 'ALLOW') !== 'CUSTOM');
}

const indexCache = new WeakMap<PushContext, Map<string, AuthorizationPolicy[]>>();
function apIndex(push: PushContext): Map<string, AuthorizationPolicy[]> {
  let idx = indexCache.get(push);
  if (!idx) { idx = byNamespace(push.inputs.authorizationPolicies ?? []); indexCache.set(push, idx); }
  return idx;
}

/** The workload-selector policies that apply (their keys identify the generated filters). */
export function selectedPolicyKeys(push: PushContext, w: Pick<Workload, 'namespace' | 'labels'>): string[] {
  return policiesFor(push, w).filter(hasSelector).map(policyKey);
}

function values<T>(list: T[] | undefined): T[] { return list ?? []; }

// One source: each set field is an OR of its values, the fields ANDed.
function sourcePrincipals(s: AuthzSource, forTcp: boolean, policyNs: string): Principal[] {
  const ids: Principal[] = [];
  const add = (vs: string[] | undefined, f: (v: string) => Principal | undefined, negate: boolean): void => {
    const items = values(vs).map(f).filter((x): x is Principal => x !== undefined);
    if (!values(vs).length) return;
    const or = orIds(items.length ? items : [NEVER_ID]);
    ids.push(negate ? notId(or) : or);
  };
  const ip = (kind: 'directRemoteIp' | 'remoteIp') => (v: string): Principal | undefined => { const c = cidr(v); return c ? { [kind]: c } : undefined; };
  add(s.principals, principalName, false);
  add(s.notPrincipals, principalName, true);
  // No RequestAuthentication (JWT) in Trellis: a request principal is never present.
  if (!forTcp) {
    add(s.requestPrincipals, () => NEVER_ID, false);
    add(s.notRequestPrincipals, () => NEVER_ID, true);
  }
  // serviceAccounts: `<ns>/<sa>`, or `<sa>` in the policy's namespace, in any trust domain.
  add(s.serviceAccounts, (v) => serviceAccountPrincipal(v, policyNs), false);
  add(s.notServiceAccounts, (v) => serviceAccountPrincipal(v, policyNs), true);
  add(s.namespaces, namespacePrincipal, false);
  add(s.notNamespaces, namespacePrincipal, true);
  add(s.ipBlocks, ip('directRemoteIp'), false);
  add(s.notIpBlocks, ip('directRemoteIp'), true);
  add(s.remoteIpBlocks, ip('remoteIp'), false);
  add(s.notRemoteIpBlocks, ip('remoteIp'), true);
  return ids;
}

function operationPermissions(o: AuthzOperation, forTcp: boolean): Permission[] {
  const rules: Permission[] = [];
  const add = (vs: string[] | undefined, f: (v: string) => Permission, negate: boolean): void => {
    if (!values(vs).length) return;
    const or = orRules(values(vs).map(f));
    rules.push(negate ? notRule(or) : or);
  };
  const port = (v: string): Permission => (/^\d+$/.test(v) ? { destinationPort: Number(v) } : NEVER_RULE);
  if (!forTcp) {
    add(o.hosts, (v) => header(':authority', v, true), false);
    add(o.notHosts, (v) => header(':authority', v, true), true);
  }
  add(o.ports, port, false);
  add(o.notPorts, port, true);
  if (!forTcp) {
    add(o.methods, (v) => header(':method', v), false);
    add(o.notMethods, (v) => header(':method', v), true);
    add(o.paths, (v) => ({ urlPath: { path: stringMatcher(v) } }), false);
    add(o.notPaths, (v) => ({ urlPath: { path: stringMatcher(v) } }), true);
  }
  return rules;
}

/** A `when` condition: a principal (source/request attributes) or a permission (destination). */
function condition(c: AuthzCondition, forTcp: boolean, policyNs: string): { principal?: Principal; permission?: Permission } | undefined {
  const key = c.key ?? '';
  if (forTcp && httpOnlyKey(key)) return undefined;
  const hdr = /^request\.headers\[(.+)\]$/.exec(key);
  let toPrincipal: ((v: string) => Principal) | undefined;
  let toPermission: ((v: string) => Permission) | undefined;
  if (hdr) toPrincipal = (v) => header(hdr[1], v);
  else if (key === 'source.ip') toPrincipal = (v) => { const x = cidr(v); return x ? { directRemoteIp: x } : NEVER_ID; };
  else if (key === 'remote.ip') toPrincipal = (v) => { const x = cidr(v); return x ? { remoteIp: x } : NEVER_ID; };
  else if (key === 'source.namespace') toPrincipal = namespacePrincipal;
  else if (key === 'source.principal') toPrincipal = principalName;
  else if (key === 'source.serviceAccount') toPrincipal = (v) => serviceAccountPrincipal(v, policyNs);
  else if (key === 'destination.ip') toPermission = (v) => { const x = cidr(v); return x ? { destinationIp: x } : NEVER_RULE; };
  else if (key === 'destination.port') toPermission = (v) => (/^\d+$/.test(v) ? { destinationPort: Number(v) } : NEVER_RULE);
  else if (key === 'connection.sni') toPermission = (v) => ({ requestedServerName: stringMatcher(v) });
  else toPrincipal = () => NEVER_ID; // request.auth.* (no JWT here) and unknown keys never match
  if (toPrincipal) {
    const parts: Principal[] = [];
    if (c.values?.length) parts.push(orIds(c.values.map(toPrincipal)));
    if (c.notValues?.length) parts.push(notId(orIds(c.notValues.map(toPrincipal))));
    return { principal: parts.length === 1 ? parts[0] : { andIds: { ids: parts.length ? parts : [{ any: true }] } } };
  }
  const tp = toPermission as (v: string) => Permission;
  const parts: Permission[] = [];
  if (c.values?.length) parts.push(orRules(c.values.map(tp)));
  if (c.notValues?.length) parts.push(notRule(orRules(c.notValues.map(tp))));
  return { permission: parts.length === 1 ? parts[0] : { andRules: { rules: parts.length ? parts : [{ any: true }] } } };
}

/** One rule as an Envoy policy: an OR over `from` (each an AND of its fields) and over `to`. */
function rulePolicy(rule: AuthzRule, forTcp: boolean, policyNs: string): RbacPolicy {
  const conds = (rule.when ?? []).map((c) => condition(c, forTcp, policyNs)).filter((c) => c !== undefined);
  const condIds = conds.flatMap((c) => (c.principal ? [c.principal] : []));
  const condRules = conds.flatMap((c) => (c.permission ? [c.permission] : []));
  const froms = (rule.from ?? []).map((f) => sourcePrincipals(f.source ?? {}, forTcp, policyNs));
  const tos = (rule.to ?? []).map((t) => operationPermissions(t.operation ?? {}, forTcp));
  const principals = (froms.length ? froms : condIds.length ? [[]] : []).map((ids) => {
    const all = [...ids, ...condIds];
    return { andIds: { ids: all.length ? all : [{ any: true }] } };
  });
  const permissions = (tos.length ? tos : condRules.length ? [[]] : []).map((rules) => {
    const all = [...rules, ...condRules];
    return { andRules: { rules: all.length ? all : [{ any: true }] } };
  });
  return { principals: principals.length ? principals : [{ any: true }], permissions: permissions.length ? permissions : [{ any: true }] };
}

const ENVOY_ACTION: Record<string, EnvoyAction> = { ALLOW: 'ALLOW', DENY: 'DENY', AUDIT: 'LOG' };

/**
 * The RBAC rule sets for a workload, in filter order (AUDIT as LOG, then DENY, then ALLOW).
 * On TCP (`forTcp`), an ALLOW or AUDIT rule using an HTTP-only field matches nothing; a DENY
 * rule drops those fields and so denies more, which is Istio's safe choice.
 */
export function rbacRules(push: PushContext, w: Pick<Workload, 'namespace' | 'labels'>, forTcp: boolean): RbacRules[] {
  const byAction = new Map<EnvoyAction, RbacRules>();
  for (const p of policiesFor(push, w)) {
    const action = ENVOY_ACTION[p.spec.action ?? 'ALLOW'];
    if (!action) continue;
    const set = byAction.get(action) ?? { action, policies: {} };
    byAction.set(action, set);
    (p.spec.rules ?? []).forEach((rule, i) => {
      if (forTcp && action !== 'DENY' && httpOnlyFields(rule ?? {}).length) return;
      set.policies[`ns[${p.metadata.namespace}]-policy[${p.metadata.name}]-rule[${i}]`] = rulePolicy(rule ?? {}, forTcp, p.metadata.namespace ?? 'default');
    });
  }
  // DENY and AUDIT without any rule match nothing; ALLOW without rules denies everything.
  return (['LOG', 'DENY', 'ALLOW'] as const)
    .map((a) => byAction.get(a))
    .filter((r): r is RbacRules => r !== undefined && (r.action === 'ALLOW' || Object.keys(r.policies).length > 0));
}

export function httpRbacFilter(rules: RbacRules): { name: string; typedConfig: Json } {
  return { name: HTTP_RBAC, typedConfig: { '@type': TYPE_URL.httpRbac, rules } };
}

export function networkRbacFilter(rules: RbacRules): { name: string; typedConfig: Json } {
  return { name: NETWORK_RBAC, typedConfig: { '@type': TYPE_URL.networkRbac, statPrefix: 'tcp.', rules } };
}

/** Warnings for the policies of a snapshot (unsupported fields, HTTP-only fields on TCP ports). */
export function authorizationWarnings(push: PushContext): string[] {
  const out: string[] = [];
  const pods = push.inputs.pods;
  for (const p of push.inputs.authorizationPolicies ?? []) {
    const id = `AuthorizationPolicy ${policyKey(p)}`;
    const action = p.spec?.action ?? 'ALLOW';
    if (action === 'CUSTOM') { out.push(`${id}: spec.action CUSTOM (external authorization) is not supported; policy ignored`); continue; }
    if (p.spec?.targetRef || p.spec?.targetRefs?.length) { out.push(`${id}: spec.targetRef(s) (waypoints, gateways) is not supported; policy ignored`); continue; }
    const rules = p.spec?.rules ?? [];
    const httpOnly = rules.map((r, i) => httpOnlyFields(r ?? {}).map((f) => `spec.rules[${i}].${f}`)).flat();
    if (!httpOnly.length) continue;
    const ns = p.metadata.namespace ?? 'default';
    const tcpSelected = pods.some((pod) => {
      const w = { namespace: pod.metadata.namespace ?? 'default', labels: pod.metadata.labels ?? {} };
      if (ns !== push.security.rootNamespace && w.namespace !== ns) return false;
      return selects(p, w.labels) && push.inboundPorts({ ...w, pod }).some((port) => !port.http);
    });
    if (!tcpSelected) continue;
    out.push(action === 'DENY'
      ? `${id}: ${httpOnly.join(', ')} only apply to HTTP; on TCP ports these fields are ignored, so the rule denies more`
      : `${id}: ${httpOnly.join(', ')} only apply to HTTP; on TCP ports such a rule matches nothing`);
  }
  return out;
}
