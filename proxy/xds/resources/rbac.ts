// Envoy's RBAC filter config (envoy.config.rbac.v3.RBAC inside the http and network RBAC
// filters): rules with an action and named policies, each a list of permissions (what is
// accessed) and principals (who accesses), compiled into predicates over the request or
// connection attributes. Unknown matcher kinds are NACKed: silently ignoring one would
// widen or narrow access in ways the policy author did not write.
import net from 'node:net';
import { arr, FieldErrors, num, obj, str, wrapped, type Obj } from './fields.js';
import { headerMatcher, stringMatcher, type StringTest } from './route.js';

export const HTTP_RBAC_FILTER = 'envoy.filters.http.rbac';
export const NETWORK_RBAC_FILTER = 'envoy.filters.network.rbac';

/** What a policy can look at; the HTTP fields are absent for a connection (network RBAC). */
export interface RbacAttributes {
  /** Lower-case header names, including the pseudo-headers :method, :authority, :path. */
  headers?: Record<string, string | string[] | undefined>;
  /** Request path without the query. */
  path?: string;
  destinationIp: string;
  destinationPort: number;
  sourceIp: string;
  /** SNI the downstream sent (TLS chains only). */
  serverName?: string;
  /** URI SAN of the verified peer certificate; absent for plaintext. */
  principal?: string;
}

type Predicate = (a: RbacAttributes) => boolean;

export interface RbacPolicy {
  name: string;
  matches: Predicate;
}

export interface RbacConfig {
  /** Absent rules: Envoy allows everything. */
  action: 'ALLOW' | 'DENY' | 'LOG';
  policies: RbacPolicy[];
  hasRules: boolean;
  /** Network RBAC's stat_prefix: its counters are `<statPrefix>rbac.allowed|denied` (Istio: "tcp."). */
  statPrefix: string;
}

/** Envoy's semantics: ALLOW allows iff some policy matches; DENY denies iff some does; LOG never denies. */
export function evaluateRbac(cfg: RbacConfig, a: RbacAttributes): { allowed: boolean; policy?: string } {
  if (!cfg.hasRules) return { allowed: true };
  const hit = cfg.policies.find((p) => p.matches(a));
  if (cfg.action === 'ALLOW') return { allowed: hit !== undefined, policy: hit?.name };
  if (cfg.action === 'DENY') return { allowed: hit === undefined, policy: hit?.name };
  return { allowed: true, policy: hit?.name };
}

function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

function cidr(v: unknown, field: string, errors: FieldErrors): ((ip: string) => boolean) | undefined {
  const o = obj(v) ?? {};
  const address = str(o.addressPrefix) ?? '';
  const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : undefined;
  if (!family) {
    errors.add(`${field}.addressPrefix`, `"${address}" is not an IP address`);
    return undefined;
  }
  const max = family === 'ipv4' ? 32 : 128;
  const len = num(wrapped(o.prefixLen)) ?? max;
  if (!Number.isInteger(len) || len < 0 || len > max) {
    errors.add(`${field}.prefixLen`, `${String(len)} is not a prefix length (0-${max})`);
    return undefined;
  }
  const list = new net.BlockList();
  list.addSubnet(address, len, family);
  return (ip) => {
    const p = plainIp(ip);
    const f = net.isIPv4(p) ? 'ipv4' : net.isIPv6(p) ? 'ipv6' : undefined;
    return f === family && list.check(p, f);
  };
}

function strMatch(v: unknown, field: string, errors: FieldErrors): StringTest | undefined {
  const o = obj(v);
  if (!o) {
    errors.add(field, 'must be a StringMatcher');
    return undefined;
  }
  return stringMatcher(o, field, errors);
}

function header(v: unknown, field: string, errors: FieldErrors): Predicate | undefined {
  const t = headerMatcher(obj(v) ?? {}, field, errors);
  // A connection has no headers: a header matcher never matches it.
  return t ? (a) => a.headers !== undefined && t(a.headers) : undefined;
}

function urlPath(v: unknown, field: string, errors: FieldErrors): Predicate | undefined {
  const t = strMatch(obj(v)?.path, `${field}.path`, errors);
  return t ? (a) => a.path !== undefined && t(a.path) : undefined;
}

function list(v: unknown, key: string, field: string, errors: FieldErrors, one: (x: unknown, f: string) => Predicate | undefined): Predicate[] | undefined {
  const o = obj(v);
  const items = arr(o?.[key]);
  if (!o || items.length === 0) {
    errors.add(`${field}.${key}`, 'must not be empty');
    return undefined;
  }
  const out = items.map((x, i) => one(x, `${field}.${key}[${i}]`));
  return out.every((p): p is Predicate => p !== undefined) ? out : undefined;
}

/** The set member of the `rule` / `identifier` oneof (protobufjs also names it in a virtual field). */
function kindOf(o: Obj, field: string, errors: FieldErrors, oneof: string): string | undefined {
  const keys = Object.keys(o).filter((k) => o[k] !== undefined && o[k] !== null && !(k === oneof && typeof o[k] === 'string'));
  if (keys.length !== 1) {
    errors.add(field, keys.length === 0 ? 'one rule kind is required' : `exactly one rule kind is allowed (got ${keys.join(', ')})`);
    return undefined;
  }
  return keys[0];
}

export function permission(v: unknown, field: string, errors: FieldErrors): Predicate | undefined {
  const o = obj(v) ?? {};
  const kind = kindOf(o, field, errors, 'rule');
  const f = `${field}.${kind ?? ''}`;
  const self = (x: unknown, ff: string): Predicate | undefined => permission(x, ff, errors);
  switch (kind) {
    case undefined: return undefined;
    case 'any': return o.any === true ? () => true : (errors.add(f, 'must be true'), undefined);
    case 'andRules': { const ps = list(o.andRules, 'rules', f, errors, self); return ps && ((a) => ps.every((p) => p(a))); }
    case 'orRules': { const ps = list(o.orRules, 'rules', f, errors, self); return ps && ((a) => ps.some((p) => p(a))); }
    case 'notRule': { const p = self(o.notRule, f); return p && ((a) => !p(a)); }
    case 'header': return header(o.header, f, errors);
    case 'urlPath': return urlPath(o.urlPath, f, errors);
    case 'destinationPort': {
      const port = num(o.destinationPort);
      if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
        errors.add(f, `${JSON.stringify(o.destinationPort)} is not a port`);
        return undefined;
      }
      return (a) => a.destinationPort === port;
    }
    case 'destinationIp': { const t = cidr(o.destinationIp, f, errors); return t && ((a) => t(a.destinationIp)); }
    case 'requestedServerName': { const t = strMatch(o.requestedServerName, f, errors); return t && ((a) => a.serverName !== undefined && t(a.serverName)); }
    default:
      errors.add(f, `permission "${kind}" is not supported`);
      return undefined;
  }
}

export function principal(v: unknown, field: string, errors: FieldErrors): Predicate | undefined {
  const o = obj(v) ?? {};
  const kind = kindOf(o, field, errors, 'identifier');
  const f = `${field}.${kind ?? ''}`;
  const self = (x: unknown, ff: string): Predicate | undefined => principal(x, ff, errors);
  switch (kind) {
    case undefined: return undefined;
    case 'any': return o.any === true ? () => true : (errors.add(f, 'must be true'), undefined);
    case 'andIds': { const ps = list(o.andIds, 'ids', f, errors, self); return ps && ((a) => ps.every((p) => p(a))); }
    case 'orIds': { const ps = list(o.orIds, 'ids', f, errors, self); return ps && ((a) => ps.some((p) => p(a))); }
    case 'notId': { const p = self(o.notId, f); return p && ((a) => !p(a)); }
    case 'authenticated': {
      const auth = obj(o.authenticated) ?? {};
      // Without principalName: any authenticated (verified) peer.
      if (auth.principalName === undefined) return (a) => a.principal !== undefined;
      const t = strMatch(auth.principalName, `${f}.principalName`, errors);
      // Plaintext has no principal: authenticated never matches it.
      return t && ((a) => a.principal !== undefined && t(a.principal));
    }
    // No trusted proxies in front of a sidecar: the remote IP is the direct peer's.
    case 'directRemoteIp': case 'remoteIp': case 'sourceIp': {
      const t = cidr(o[kind], f, errors);
      return t && ((a) => t(a.sourceIp));
    }
    case 'header': return header(o.header, f, errors);
    case 'urlPath': return urlPath(o.urlPath, f, errors);
    default:
      errors.add(f, `principal "${kind}" is not supported`);
      return undefined;
  }
}

/** The filter's typed config (http or network RBAC); errors name `field`. */
export function decodeRbac(tc: Obj, field: string, errors: FieldErrors): RbacConfig | undefined {
  const before = errors.list.length;
  const statPrefix = str(tc.statPrefix) ?? '';
  const rules = obj(tc.rules);
  if (tc.shadowRules !== undefined || tc.matcher !== undefined) errors.add(field, 'only rules are supported (not shadowRules, matcher)');
  if (!rules) return errors.list.length === before ? { action: 'ALLOW', policies: [], hasRules: false, statPrefix } : undefined;
  const actionRaw = str(rules.action) ?? 'ALLOW';
  if (actionRaw !== 'ALLOW' && actionRaw !== 'DENY' && actionRaw !== 'LOG') errors.add(`${field}.rules.action`, `"${actionRaw}" is not one of ALLOW, DENY, LOG`);
  const policies: RbacPolicy[] = [];
  const raw = rules.policies === undefined ? {} : obj(rules.policies);
  if (!raw) errors.add(`${field}.rules.policies`, 'must be a map of policy name to policy');
  for (const [name, pv] of Object.entries(raw ?? {})) {
    const pf = `${field}.rules.policies["${name}"]`;
    const p = obj(pv) ?? {};
    if (p.condition !== undefined || p.checkedCondition !== undefined) errors.add(`${pf}.condition`, 'CEL conditions are not supported');
    const perms = arr(p.permissions);
    const ids = arr(p.principals);
    if (perms.length === 0) errors.add(`${pf}.permissions`, 'must not be empty');
    if (ids.length === 0) errors.add(`${pf}.principals`, 'must not be empty');
    // Within a policy, any permission and any principal (Envoy ORs each list).
    const ps = perms.map((x, i) => permission(x, `${pf}.permissions[${i}]`, errors));
    const is = ids.map((x, i) => principal(x, `${pf}.principals[${i}]`, errors));
    if (ps.every((x): x is Predicate => x !== undefined) && is.every((x): x is Predicate => x !== undefined)) {
      policies.push({ name, matches: (a) => ps.some((x) => x(a)) && is.some((x) => x(a)) });
    }
  }
  if (errors.list.length !== before) return undefined;
  // Envoy evaluates policies in name order (a std::map); the first match names the policy.
  policies.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  return { action: actionRaw as RbacConfig['action'], policies, hasRules: true, statPrefix };
}
