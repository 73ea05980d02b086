// Apply-time validation of security.istio.io PeerAuthentication and AuthorizationPolicy (what
// istiod's /validate rejects): modes and actions from their enums, portLevelMtls only with a
// workload selector, principals/namespaces with `*` only as a prefix or suffix, IPs and CIDRs,
// ports, condition keys Istio knows, and unknown fields. Errors name the field path.
import type { FieldError } from './validate.js';
import { cidr } from '../security/rbac-matchers.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const FIELDS: Record<string, string[]> = {
  paSpec: ['selector', 'mtls', 'portLevelMtls'],
  mtls: ['mode'],
  selector: ['matchLabels'],
  apSpec: ['selector', 'targetRef', 'targetRefs', 'action', 'provider', 'rules'],
  rule: ['from', 'to', 'when'],
  from: ['source'],
  to: ['operation'],
  source: ['principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts'],
  operation: ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'],
  condition: ['key', 'values', 'notValues'],
};
const MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'];
const ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'];
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
// Istio's condition keys (security/pkg/authz: attributes); `[...]` ones take a name.
const CONDITION_KEYS = ['source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'source.serviceAccount', 'destination.ip', 'destination.port', 'connection.sni', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter'];
const CONDITION_PREFIXES = [/^request\.headers\[[^\]]+\]$/, /^request\.auth\.claims\[[^\]]+\](\[[^\]]+\])*$/, /^experimental\.envoy\.filters\./];

class Errors {
  readonly list: FieldError[] = [];
  add(field: string, message: string): void { this.list.push({ field, message }); }
  unknown(o: unknown, kind: string, path: string): void {
    if (!isObj(o)) return;
    for (const k of Object.keys(o)) if (!FIELDS[kind].includes(k)) this.add(`${path}.${k}`, 'unknown field');
  }
  object(v: unknown, path: string): v is Obj {
    if (v === undefined) return false;
    if (!isObj(v)) { this.add(path, 'must be an object'); return false; }
    return true;
  }
  strings(v: unknown, path: string, each: (s: string, p: string) => void): void {
    if (v === undefined) return;
    if (!Array.isArray(v)) { this.add(path, 'must be a list of strings'); return; }
    v.forEach((s, i) => {
      if (typeof s !== 'string' || s === '') this.add(`${path}[${i}]`, 'must be a non-empty string');
      else each(s, `${path}[${i}]`);
    });
  }
}

function selector(e: Errors, v: unknown, path: string): boolean {
  if (!e.object(v, path)) return false;
  e.unknown(v, 'selector', path);
  const labels = v.matchLabels;
  if (labels === undefined) return false;
  if (!isObj(labels)) { e.add(`${path}.matchLabels`, 'must be a map of label keys to values'); return false; }
  for (const [k, val] of Object.entries(labels)) {
    if (!LABEL_KEY.test(k)) e.add(`${path}.matchLabels`, `'${k}' is not a valid label key`);
    if (typeof val !== 'string' || !LABEL_VALUE.test(val)) e.add(`${path}.matchLabels[${k}]`, `'${String(val)}' is not a valid label value`);
  }
  return Object.keys(labels).length > 0;
}

function mode(e: Errors, v: unknown, path: string): void {
  if (!e.object(v, path)) return;
  e.unknown(v, 'mtls', path);
  if (v.mode !== undefined && !MODES.includes(String(v.mode))) e.add(`${path}.mode`, `'${String(v.mode)}' is not a mode (UNSET, DISABLE, PERMISSIVE, STRICT)`);
}

export function validatePeerAuthentication(spec: unknown): FieldError[] {
  const e = new Errors();
  if (spec === undefined) return e.list; // an empty policy (all defaults) is valid
  if (!isObj(spec)) { e.add('spec', 'must be an object'); return e.list; }
  e.unknown(spec, 'paSpec', 'spec');
  const hasSelector = selector(e, spec.selector, 'spec.selector');
  mode(e, spec.mtls, 'spec.mtls');
  if (spec.portLevelMtls !== undefined) {
    if (!isObj(spec.portLevelMtls)) { e.add('spec.portLevelMtls', 'must be a map of port numbers to mTLS settings'); return e.list; }
    if (!hasSelector) e.add('spec.portLevelMtls', 'requires spec.selector with at least one label (port-level settings only apply to selected workloads)');
    if (Object.keys(spec.portLevelMtls).length === 0) e.add('spec.portLevelMtls', 'must not be empty');
    for (const [port, m] of Object.entries(spec.portLevelMtls)) {
      const path = `spec.portLevelMtls[${port}]`;
      if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) e.add(path, `'${port}' is not a port number 1-65535`);
      if (!isObj(m)) e.add(path, 'must be an object with a mode');
      else mode(e, m, path);
    }
  }
  return e.list;
}

// `*` alone, as a prefix or as a suffix (Istio's matching forms), never in the middle.
function wildcard(e: Errors, s: string, path: string): void {
  if (s !== '*' && s.slice(1, -1).includes('*')) e.add(path, `'${s}' may use '*' only as a prefix or a suffix`);
}
const ip = (e: Errors) => (s: string, path: string): void => { if (!cidr(s)) e.add(path, `'${s}' is not an IP address or CIDR`); };
const port = (e: Errors) => (s: string, path: string): void => {
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 65535) e.add(path, `'${s}' is not a port number 1-65535`);
};

function source(e: Errors, v: unknown, path: string): void {
  if (!isObj(v) || Object.keys(v).length === 0) { e.add(path, 'must set at least one field'); return; }
  e.unknown(v, 'source', path);
  for (const k of ['principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts']) {
    e.strings(v[k], `${path}.${k}`, (s, p) => wildcard(e, s, p));
  }
  for (const k of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']) e.strings(v[k], `${path}.${k}`, ip(e));
}

function operation(e: Errors, v: unknown, path: string): void {
  if (!isObj(v) || Object.keys(v).length === 0) { e.add(path, 'must set at least one field'); return; }
  e.unknown(v, 'operation', path);
  for (const k of ['hosts', 'notHosts', 'methods', 'notMethods']) e.strings(v[k], `${path}.${k}`, (s, p) => wildcard(e, s, p));
  for (const k of ['paths', 'notPaths']) e.strings(v[k], `${path}.${k}`, () => undefined);
  for (const k of ['ports', 'notPorts']) e.strings(v[k], `${path}.${k}`, port(e));
}

function condition(e: Errors, c: unknown, path: string): void {
  if (!isObj(c)) { e.add(path, 'must be an object'); return; }
  e.unknown(c, 'condition', path);
  const key = c.key;
  if (typeof key !== 'string' || !key) { e.add(`${path}.key`, 'required'); return; }
  if (!CONDITION_KEYS.includes(key) && !CONDITION_PREFIXES.some((r) => r.test(key))) e.add(`${path}.key`, `'${key}' is not a supported attribute`);
  if (!(Array.isArray(c.values) && c.values.length) && !(Array.isArray(c.notValues) && c.notValues.length)) e.add(path, 'at least one of values or notValues must be set');
  const each = key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip' ? ip(e) : key === 'destination.port' ? port(e) : () => undefined;
  e.strings(c.values, `${path}.values`, each);
  e.strings(c.notValues, `${path}.notValues`, each);
}

export function validateAuthorizationPolicy(spec: unknown): FieldError[] {
  const e = new Errors();
  if (spec === undefined) return e.list; // no spec: ALLOW without rules, which denies all (valid)
  if (!isObj(spec)) { e.add('spec', 'must be an object'); return e.list; }
  e.unknown(spec, 'apSpec', 'spec');
  selector(e, spec.selector, 'spec.selector');
  if (spec.selector !== undefined && (spec.targetRef !== undefined || spec.targetRefs !== undefined)) e.add('spec.selector', 'only one of selector, targetRef, targetRefs may be set');
  const action = spec.action ?? 'ALLOW';
  if (!ACTIONS.includes(String(action))) e.add('spec.action', `'${String(action)}' is not an action (ALLOW, DENY, AUDIT, CUSTOM)`);
  if (action === 'CUSTOM' && !(isObj(spec.provider) && typeof spec.provider.name === 'string' && spec.provider.name)) e.add('spec.provider.name', 'required when action is CUSTOM');
  if (action !== 'CUSTOM' && spec.provider !== undefined) e.add('spec.provider', 'may only be set when action is CUSTOM');
  if (spec.rules !== undefined && !Array.isArray(spec.rules)) { e.add('spec.rules', 'must be a list'); return e.list; }
  (spec.rules ?? []).forEach((r: unknown, i: number) => {
    const path = `spec.rules[${i}]`;
    if (!isObj(r)) { e.add(path, 'must be an object'); return; }
    e.unknown(r, 'rule', path);
    for (const [k, kind, check] of [['from', 'from', source], ['to', 'to', operation]] as const) {
      if (r[k] === undefined) continue;
      if (!Array.isArray(r[k]) || r[k].length === 0) { e.add(`${path}.${k}`, 'must be a non-empty list when set'); continue; }
      (r[k] as unknown[]).forEach((x, j) => {
        const p = `${path}.${k}[${j}]`;
        e.unknown(x, kind, p);
        check(e, isObj(x) ? x[k === 'from' ? 'source' : 'operation'] : undefined, `${p}.${k === 'from' ? 'source' : 'operation'}`);
      });
    }
    if (r.when !== undefined) {
      if (!Array.isArray(r.when)) e.add(`${path}.when`, 'must be a list');
      else r.when.forEach((c, j) => condition(e, c, `${path}.when[${j}]`));
    }
  });
  return e.list;
}
