// Privilege-escalation prevention (Kubernetes' rbac registry "ConfirmNoEscalation" and
// "BindingAuthorized"): a user may write a Role/ClusterRole only with permissions they hold
// (or with the `escalate` verb on it), and a binding only to a role whose permissions they
// hold (or with the `bind` verb on it). Requests expand each rule into attributes; a `*`
// is asked as a literal `*`, which only a wildcard grant covers.
import type { UserInfo } from '../authn.js';
import type { Attributes, Authorizer } from '../authz.js';
import { forbidden } from '../errors.js';
import { getPath, type Json } from '../util.js';
import { roleRefOf, rulesOf, type PolicyRule } from './rules.js';

function attributesFor(rule: PolicyRule, namespace: string): Attributes[] {
  const out: Attributes[] = [];
  for (const verb of rule.verbs) {
    for (const path of rule.nonResourceURLs ?? []) {
      out.push({ verb, apiGroup: '', apiVersion: '', resource: '', subresource: '', namespace: '', name: '', resourceRequest: false, path });
    }
    for (const apiGroup of rule.apiGroups ?? []) {
      for (const res of rule.resources ?? []) {
        const slash = res.indexOf('/');
        const resource = slash < 0 ? res : res.slice(0, slash);
        const subresource = slash < 0 ? '' : res.slice(slash + 1);
        const names = rule.resourceNames?.length ? rule.resourceNames : [''];
        for (const name of names) out.push({ verb, apiGroup, apiVersion: '', resource, subresource, namespace, name, resourceRequest: true, path: '' });
      }
    }
  }
  return out;
}

async function missingRules(authorize: Authorizer, user: UserInfo, rules: PolicyRule[], namespace: string): Promise<PolicyRule[]> {
  const missing: PolicyRule[] = [];
  for (const rule of rules) {
    for (const a of attributesFor(rule, namespace)) {
      if (!(await authorize(user, a)).allowed) { missing.push(rule); break; }
    }
  }
  return missing;
}

function describeRule(r: PolicyRule): string {
  const parts: string[] = [];
  if (r.apiGroups?.length) parts.push(`APIGroups:[${r.apiGroups.map((g) => JSON.stringify(g)).join(' ')}]`);
  if (r.resources?.length) parts.push(`Resources:[${r.resources.map((g) => JSON.stringify(g)).join(' ')}]`);
  if (r.resourceNames?.length) parts.push(`ResourceNames:[${r.resourceNames.map((g) => JSON.stringify(g)).join(' ')}]`);
  if (r.nonResourceURLs?.length) parts.push(`NonResourceURLs:[${r.nonResourceURLs.map((g) => JSON.stringify(g)).join(' ')}]`);
  parts.push(`Verbs:[${r.verbs.map((g) => JSON.stringify(g)).join(' ')}]`);
  return `{${parts.join(', ')}}`;
}

function escalationError(resource: string, name: string, user: UserInfo, missing: PolicyRule[]): Error {
  return forbidden(`${resource}.rbac.authorization.k8s.io "${name}" is forbidden: user "${user.username}" (groups=${JSON.stringify(user.groups)}) is attempting to grant RBAC permissions not currently held:\n${missing.map(describeRule).join('\n')}`);
}

const selfAttrs = (verb: string, resource: string, namespace: string, name: string): Attributes =>
  ({ verb, apiGroup: 'rbac.authorization.k8s.io', apiVersion: '', resource, subresource: '', namespace, name, resourceRequest: true, path: '' });

/** Checks a Role/ClusterRole (resource roles|clusterroles) or a binding about to be written. */
export async function confirmNoEscalation(
  authorize: Authorizer, user: UserInfo, resource: string, obj: Json,
  roleRules: (kind: string, namespace: string, name: string) => PolicyRule[] | undefined,
): Promise<void> {
  const namespace = String(getPath(obj, 'metadata.namespace') ?? '');
  const name = String(getPath(obj, 'metadata.name') ?? '');
  if (resource === 'roles' || resource === 'clusterroles') {
    if ((await authorize(user, selfAttrs('escalate', resource, namespace, name))).allowed) return;
    const missing = await missingRules(authorize, user, rulesOf(obj), namespace);
    if (missing.length) throw escalationError(resource, name, user, missing);
    return;
  }
  const ref = roleRefOf(obj);
  if (!ref) return; // validation reports the missing roleRef
  const refResource = ref.kind === 'ClusterRole' ? 'clusterroles' : 'roles';
  if ((await authorize(user, selfAttrs('bind', refResource, ref.kind === 'ClusterRole' && resource === 'clusterrolebindings' ? '' : namespace, ref.name))).allowed) return;
  const rules = roleRules(ref.kind, namespace, ref.name);
  if (!rules) throw forbidden(`${resource}.rbac.authorization.k8s.io "${name}" is forbidden: ${ref.kind.toLowerCase()}s.rbac.authorization.k8s.io "${ref.name}" not found`);
  const missing = await missingRules(authorize, user, rules, namespace);
  if (missing.length) throw escalationError(resource, name, user, missing);
}
