// RouteConfiguration: decode, validate (every error with its field path) and compile into
// a RouteTable whose matchers are built once, when the config arrives, not per request.
import { arr, FieldErrors, num, obj, str, wrapped, durationMs, type Obj } from './fields.js';
import { decodeRetryPolicy, type RetryPolicy } from './retry-policy.js';
import { decodeHttpFault, FAULT_FILTER, type FaultConfig } from './fault.js';
import { decodeHeaderMutations, type HeaderMutations } from './header-mutation.js';
import { decodeHashPolicies, type HashPolicy } from './hash-policy.js';
import { decodeMirrorPolicies, type MirrorPolicy } from './mirror.js';
import { perFilterCors, type CorsPolicy } from './cors.js';

export interface WeightedCluster {
  name: string;
  weight: number;
}

export type ClusterSpecifier =
  | { kind: 'cluster'; name: string }
  | { kind: 'weighted'; clusters: WeightedCluster[]; totalWeight: number };

/** safe_regex + substitution (RegexMatchAndSubstitute): replaces every match, Envoy-style. */
export interface RegexRewrite {
  pattern: RegExp;
  substitution: string;
}

/** Envoy's route timeout when none is set. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

export interface ForwardAction {
  kind: 'route';
  target: ClusterSpecifier;
  prefixRewrite?: string;
  regexRewrite?: RegexRewrite;
  hostRewrite?: string;
  /** 0 disables the timeout (Envoy); unset means 15 s. */
  timeoutMs: number;
  retryPolicy?: RetryPolicy;
  hashPolicies: HashPolicy[];
  /** request_mirror_policies: shadow copies, fire and forget. */
  mirrors: MirrorPolicy[];
}

export interface RedirectAction {
  kind: 'redirect';
  scheme?: string;
  host?: string;
  port?: number;
  path?: string;
  prefixRewrite?: string;
  regexRewrite?: RegexRewrite;
  status: number;
  stripQuery: boolean;
}

export type RouteAction =
  | ForwardAction
  | RedirectAction
  | { kind: 'direct'; status: number; body?: string };

export type Headers = Record<string, string | string[] | undefined>;

export interface Route {
  name: string;
  /** True when the request's path and headers satisfy this route's match. */
  matches(path: string, headers: Headers): boolean;
  /** The matched prefix of a prefix route (what prefixRewrite replaces). */
  prefix?: string;
  action: RouteAction;
  headers?: HeaderMutations;
  /** typed_per_filter_config["envoy.filters.http.fault"]: overrides the filter's own config. */
  fault?: FaultConfig;
  /** typed_per_filter_config["envoy.filters.http.cors"]: overrides the virtual host's. */
  cors?: CorsPolicy;
  /** per_request_buffer_limit_bytes: how much of a request body is kept for retries and mirrors. */
  bufferLimitBytes?: number;
}

export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Route[];
  retryPolicy?: RetryPolicy;
  headers?: HeaderMutations;
  fault?: FaultConfig;
  cors?: CorsPolicy;
  includeRequestAttemptCount: boolean;
  includeAttemptCountInResponse: boolean;
  /** per_request_buffer_limit_bytes (a route's own setting wins). */
  bufferLimitBytes?: number;
  /** Envoy's require_tls: plaintext requests get a 301 to https (a gateway's httpsRedirect). */
  requireTls: 'NONE' | 'EXTERNAL_ONLY' | 'ALL';
}

export interface RouteMatch {
  virtualHost: VirtualHost;
  route: Route;
}

/** A compiled RouteConfiguration. Domain lookup follows Envoy: exact, *.suffix, prefix.*, then *. */
export class RouteTable {
  private readonly exact = new Map<string, VirtualHost>();
  private readonly suffixes: Array<[string, VirtualHost]> = [];
  private readonly prefixes: Array<[string, VirtualHost]> = [];
  private any: VirtualHost | undefined;

  constructor(readonly name: string, readonly virtualHosts: VirtualHost[], readonly headers?: HeaderMutations) {
    for (const vh of virtualHosts) {
      for (const raw of vh.domains) {
        const d = raw.toLowerCase();
        if (d === '*') this.any ??= vh;
        else if (d.startsWith('*')) this.suffixes.push([d.slice(1), vh]);
        else if (d.endsWith('*')) this.prefixes.push([d.slice(0, -1), vh]);
        else if (!this.exact.has(d)) this.exact.set(d, vh);
      }
    }
    // Longest wildcard wins, as in Envoy.
    this.suffixes.sort((a, b) => b[0].length - a[0].length);
    this.prefixes.sort((a, b) => b[0].length - a[0].length);
  }

  findVirtualHost(host: string): VirtualHost | undefined {
    const full = host.toLowerCase();
    const colon = full.lastIndexOf(':');
    // Host header ports are matched as written first, then without the port.
    const bare = colon > 0 && !full.endsWith(']') ? full.slice(0, colon) : undefined;
    const candidates = bare ? [full, bare] : [full];
    for (const h of candidates) {
      const vh = this.exact.get(h);
      if (vh) return vh;
    }
    for (const h of candidates) {
      for (const [suffix, vh] of this.suffixes) if (h.endsWith(suffix) && h.length > suffix.length) return vh;
    }
    for (const h of candidates) {
      for (const [prefix, vh] of this.prefixes) if (h.startsWith(prefix) && h.length > prefix.length) return vh;
    }
    return this.any;
  }

  match(host: string, path: string, headers: Headers): RouteMatch | undefined {
    const virtualHost = this.findVirtualHost(host);
    if (!virtualHost) return undefined;
    for (const route of virtualHost.routes) if (route.matches(path, headers)) return { virtualHost, route };
    return undefined;
  }
}

/** Full-string regex (Envoy's safe_regex semantics). */
export function fullRegex(re: string, field: string, errors: FieldErrors, flags = ''): RegExp | undefined {
  try {
    return new RegExp(`^(?:${re})$`, flags);
  } catch (e) {
    errors.add(field, `invalid regex: ${(e as Error).message}`);
    return undefined;
  }
}

export type StringTest = (value: string) => boolean;

export function stringMatcher(m: Obj, field: string, errors: FieldErrors): StringTest | undefined {
  const ignoreCase = m.ignoreCase === true;
  const norm = (s: string): string => (ignoreCase ? s.toLowerCase() : s);
  if (typeof m.exact === 'string') { const e = norm(m.exact); return (v) => norm(v) === e; }
  if (typeof m.prefix === 'string') { const p = norm(m.prefix); return (v) => norm(v).startsWith(p); }
  if (typeof m.suffix === 'string') { const s = norm(m.suffix); return (v) => norm(v).endsWith(s); }
  if (typeof m.contains === 'string') { const c = norm(m.contains); return (v) => norm(v).includes(c); }
  const safe = obj(m.safeRegex);
  if (safe) {
    const re = fullRegex(str(safe.regex) ?? '', `${field}.safeRegex.regex`, errors);
    return re ? (v) => re.test(v) : undefined;
  }
  errors.add(field, 'one of exact, prefix, suffix, contains, safeRegex is required');
  return undefined;
}

function headerValue(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export type HeaderTest = (headers: Headers) => boolean;

export function headerMatcher(h: Obj, field: string, errors: FieldErrors): HeaderTest | undefined {
  const name = str(h.name)?.toLowerCase();
  if (!name) {
    errors.add(`${field}.name`, 'required');
    return undefined;
  }
  let test: StringTest | undefined;
  if (typeof h.exactMatch === 'string') { const e = h.exactMatch; test = (v) => v === e; }
  else if (typeof h.prefixMatch === 'string') { const p = h.prefixMatch; test = (v) => v.startsWith(p); }
  else if (typeof h.suffixMatch === 'string') { const s = h.suffixMatch; test = (v) => v.endsWith(s); }
  else if (typeof h.containsMatch === 'string') { const c = h.containsMatch; test = (v) => v.includes(c); }
  else if (obj(h.safeRegexMatch)) {
    const re = fullRegex(str(obj(h.safeRegexMatch)?.regex) ?? '', `${field}.safeRegexMatch.regex`, errors);
    if (!re) return undefined;
    test = (v) => re.test(v);
  } else if (obj(h.stringMatch)) {
    test = stringMatcher(obj(h.stringMatch) ?? {}, `${field}.stringMatch`, errors);
    if (!test) return undefined;
  } else if (h.presentMatch !== undefined) {
    const want = h.presentMatch === true;
    const invert = h.invertMatch === true;
    return (headers) => ((headerValue(headers, name) !== undefined) === want) !== invert;
  } else {
    // No matcher: Envoy treats it as "header is present".
    test = () => true;
  }
  const invert = h.invertMatch === true;
  const t = test;
  return (headers) => {
    const v = headerValue(headers, name);
    return v === undefined ? invert : t(v) !== invert;
  };
}

function compileMatch(m: Obj | undefined, field: string, errors: FieldErrors): Route['matches'] | undefined {
  if (!m) {
    errors.add(field, 'required');
    return undefined;
  }
  const caseSensitive = wrapped(m.caseSensitive) !== false;
  let pathTest: ((path: string) => boolean) | undefined;
  const stripQuery = (p: string): string => { const q = p.indexOf('?'); return q < 0 ? p : p.slice(0, q); };
  if (typeof m.prefix === 'string') {
    const prefix = caseSensitive ? m.prefix : m.prefix.toLowerCase();
    pathTest = caseSensitive ? (p) => p.startsWith(prefix) : (p) => p.toLowerCase().startsWith(prefix);
  } else if (typeof m.path === 'string') {
    const exact = caseSensitive ? m.path : m.path.toLowerCase();
    pathTest = caseSensitive ? (p) => stripQuery(p) === exact : (p) => stripQuery(p).toLowerCase() === exact;
  } else if (obj(m.safeRegex)) {
    const re = fullRegex(str(obj(m.safeRegex)?.regex) ?? '', `${field}.safeRegex.regex`, errors, caseSensitive ? '' : 'i');
    if (re) pathTest = (p) => re.test(stripQuery(p));
  } else {
    errors.add(field, 'one of prefix, path, safeRegex is required');
  }
  const headerTests: HeaderTest[] = [];
  arr(m.headers).forEach((h, i) => {
    const t = headerMatcher(obj(h) ?? {}, `${field}.headers[${i}]`, errors);
    if (t) headerTests.push(t);
  });
  if (!pathTest) return undefined;
  const p = pathTest;
  if (headerTests.length === 0) return (path) => p(path);
  return (path, headers) => p(path) && headerTests.every((t) => t(headers));
}

function compileRegexRewrite(v: unknown, field: string, errors: FieldErrors): RegexRewrite | undefined {
  const rr = obj(v);
  if (!rr) return undefined;
  const regex = str(obj(rr.pattern)?.regex);
  if (regex === undefined) {
    errors.add(`${field}.pattern.regex`, 'required');
    return undefined;
  }
  try {
    // Envoy's substitution uses \\1 for capture groups; JavaScript uses $1.
    const substitution = (str(rr.substitution) ?? '').replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1');
    return { pattern: new RegExp(regex, 'g'), substitution };
  } catch (e) {
    errors.add(`${field}.pattern.regex`, `invalid regex: ${(e as Error).message}`);
    return undefined;
  }
}

const REDIRECT_CODES: Record<string, number> = {
  MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308,
};

function compileRedirect(rd: Obj, field: string, errors: FieldErrors): RedirectAction | undefined {
  const before = errors.list.length;
  const code = str(rd.responseCode) ?? 'MOVED_PERMANENTLY';
  const status = REDIRECT_CODES[code];
  if (status === undefined) errors.add(`${field}.responseCode`, `"${code}" is not a redirect response code`);
  let scheme = str(rd.schemeRedirect)?.toLowerCase();
  if (rd.httpsRedirect === true) scheme = 'https';
  const port = num(rd.portRedirect);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) errors.add(`${field}.portRedirect`, `${port} is not a port`);
  const path = str(rd.pathRedirect);
  const prefixRewrite = str(rd.prefixRewrite);
  const regexRewrite = compileRegexRewrite(rd.regexRewrite, `${field}.regexRewrite`, errors);
  if ([path, prefixRewrite, regexRewrite].filter((x) => x !== undefined).length > 1) {
    errors.add(field, 'only one of pathRedirect, prefixRewrite, regexRewrite may be set');
  }
  if (errors.list.length !== before || status === undefined) return undefined;
  return {
    kind: 'redirect', scheme, host: str(rd.hostRedirect) || undefined, port: port || undefined, path, prefixRewrite, regexRewrite,
    status, stripQuery: rd.stripQuery === true,
  };
}

function compileRouteAction(r: Obj, field: string, errors: FieldErrors): RouteAction | undefined {
  const ra = obj(r.route);
  if (ra) {
    const before = errors.list.length;
    let timeoutMs = DEFAULT_ROUTE_TIMEOUT_MS;
    if (ra.timeout !== undefined) {
      const ms = durationMs(ra.timeout);
      if (ms === undefined || ms < 0) errors.add(`${field}.route.timeout`, 'must be a non-negative duration');
      else timeoutMs = ms;
    }
    const prefixRewrite = str(ra.prefixRewrite);
    const regexRewrite = compileRegexRewrite(ra.regexRewrite, `${field}.route.regexRewrite`, errors);
    if (prefixRewrite !== undefined && regexRewrite) errors.add(`${field}.route`, 'only one of prefixRewrite, regexRewrite may be set');
    const hostRewrite = str(ra.hostRewriteLiteral);
    const rp = obj(ra.retryPolicy);
    const retryPolicy = rp ? decodeRetryPolicy(rp, `${field}.route.retryPolicy`, errors) : undefined;
    const hashPolicies = decodeHashPolicies(ra.hashPolicy, `${field}.route.hashPolicy`, errors);
    const mirrors = decodeMirrorPolicies(ra.requestMirrorPolicies, `${field}.route.requestMirrorPolicies`, errors);
    const common = { prefixRewrite, regexRewrite, hostRewrite, timeoutMs, retryPolicy, hashPolicies, mirrors };
    if (typeof ra.cluster === 'string' && ra.cluster !== '') {
      return errors.list.length === before ? { kind: 'route', target: { kind: 'cluster', name: ra.cluster }, ...common } : undefined;
    }
    const wc = obj(ra.weightedClusters);
    if (wc) {
      const clusters: WeightedCluster[] = [];
      arr(wc.clusters).forEach((c, i) => {
        const co = obj(c) ?? {};
        const name = str(co.name);
        const weight = num(wrapped(co.weight)) ?? 0;
        if (!name) errors.add(`${field}.route.weightedClusters.clusters[${i}].name`, 'required');
        if (!Number.isInteger(weight) || weight < 0) {
          errors.add(`${field}.route.weightedClusters.clusters[${i}].weight`, `${String(weight)} is not a non-negative integer`);
        }
        if (name) clusters.push({ name, weight });
      });
      const totalWeight = clusters.reduce((s, c) => s + c.weight, 0);
      if (clusters.length === 0) errors.add(`${field}.route.weightedClusters.clusters`, 'must not be empty');
      else if (totalWeight <= 0) errors.add(`${field}.route.weightedClusters.clusters`, 'weights must sum to more than 0');
      return { kind: 'route', target: { kind: 'weighted', clusters, totalWeight }, ...common };
    }
    errors.add(`${field}.route`, 'one of cluster, weightedClusters is required');
    return undefined;
  }
  const dr = obj(r.directResponse);
  if (dr) {
    const status = num(dr.status) ?? 0;
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      errors.add(`${field}.directResponse.status`, `${String(dr.status)} is not an HTTP status`);
      return undefined;
    }
    const body = str(obj(dr.body)?.inlineString);
    return { kind: 'direct', status, body };
  }
  const rd = obj(r.redirect);
  if (rd) return compileRedirect(rd, `${field}.redirect`, errors);
  errors.add(field, 'no action: one of route, redirect, directResponse is required');
  return undefined;
}

/** The fault filter's per-route (or per virtual host) override, if any. */
function perFilterFault(level: Obj, field: string, errors: FieldErrors): FaultConfig | undefined {
  const cfg = obj(obj(level.typedPerFilterConfig)?.[FAULT_FILTER]);
  return cfg ? decodeHttpFault(cfg, `${field}typedPerFilterConfig["${FAULT_FILTER}"]`, errors) : undefined;
}

/** per_request_buffer_limit_bytes (UInt32Value) of a route or virtual host. */
function bufferLimit(level: Obj, field: string, errors: FieldErrors): number | undefined {
  if (level.perRequestBufferLimitBytes === undefined) return undefined;
  const n = num(wrapped(level.perRequestBufferLimitBytes));
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    errors.add(`${field}.perRequestBufferLimitBytes`, 'must be an unsigned 32-bit integer');
    return undefined;
  }
  return n;
}

function requireTls(v: unknown, field: string, errors: FieldErrors): VirtualHost['requireTls'] {
  if (v === undefined || v === null || v === 'NONE' || v === 0) return 'NONE';
  if (v === 'EXTERNAL_ONLY' || v === 1) return 'EXTERNAL_ONLY';
  if (v === 'ALL' || v === 2) return 'ALL';
  errors.add(field, `"${String(v)}" is not NONE, EXTERNAL_ONLY or ALL`);
  return 'NONE';
}

/** Validates and compiles a RouteConfiguration (also used for an HCM's inline routeConfig). */
export function compileRouteConfiguration(rc: Obj, errors: FieldErrors, prefix = ''): RouteTable | undefined {
  const name = str(rc.name) ?? '';
  const before = errors.list.length;
  const virtualHosts: VirtualHost[] = [];
  arr(rc.virtualHosts).forEach((v, vi) => {
    const vh = obj(v) ?? {};
    const vf = `${prefix}virtualHosts[${vi}]`;
    const domains = arr(vh.domains).filter((d): d is string => typeof d === 'string');
    if (domains.length === 0) errors.add(`${vf}.domains`, 'must not be empty');
    domains.forEach((d, di) => {
      if (d !== '*' && d.slice(1, -1).includes('*')) errors.add(`${vf}.domains[${di}]`, `"${d}": wildcard only at the start or end`);
    });
    const routes: Route[] = [];
    arr(vh.routes).forEach((rr, ri) => {
      const r = obj(rr) ?? {};
      const rf = `${vf}.routes[${ri}]`;
      const matches = compileMatch(obj(r.match), `${rf}.match`, errors);
      const action = compileRouteAction(r, rf, errors);
      const prefix = str(obj(r.match)?.prefix);
      const headers = decodeHeaderMutations(r, rf, errors);
      const fault = perFilterFault(r, `${rf}.`, errors);
      const cors = perFilterCors(r, `${rf}.`, errors);
      const bufferLimitBytes = bufferLimit(r, rf, errors);
      if (matches && action) routes.push({ name: str(r.name) ?? '', matches, prefix, action, headers, fault, cors, bufferLimitBytes });
    });
    const rp = obj(vh.retryPolicy);
    virtualHosts.push({
      name: str(vh.name) ?? '',
      domains,
      routes,
      retryPolicy: rp ? decodeRetryPolicy(rp, `${vf}.retryPolicy`, errors) : undefined,
      headers: decodeHeaderMutations(vh, vf, errors),
      fault: perFilterFault(vh, `${vf}.`, errors),
      cors: perFilterCors(vh, `${vf}.`, errors),
      includeRequestAttemptCount: vh.includeRequestAttemptCount === true,
      includeAttemptCountInResponse: vh.includeAttemptCountInResponse === true,
      bufferLimitBytes: bufferLimit(vh, vf, errors),
      requireTls: requireTls(vh.requireTls, `${vf}.requireTls`, errors),
    });
  });
  const headers = decodeHeaderMutations(rc, prefix.replace(/\.$/, ''), errors);
  return errors.list.length === before ? new RouteTable(name, virtualHosts, headers) : undefined;
}

export function decodeRouteConfiguration(raw: Obj): { name: string; value?: RouteTable; errors: string[] } {
  const name = str(raw.name) ?? '';
  const errors = new FieldErrors(`RouteConfiguration "${name}"`);
  if (!name) errors.add('name', 'required');
  const value = compileRouteConfiguration(raw, errors);
  return errors.ok ? { name, value, errors: [] } : { name, errors: errors.list };
}
