// Apply-time validation of Istio networking objects (what istiod's /validate rejects; the
// security kinds are in security.ts):
// required and non-empty hosts, weights (non-negative; summing to 100 when a rule has
// several destinations), durations, RE2-compatible regexes, and unknown fields in spec.
// Each error names the field path, Kubernetes style (`spec.http[0].route[1].weight`).

import { validateAuthorizationPolicy, validatePeerAuthentication } from './security.js';
import { validateGateway, validateServiceEntry, validateSidecar } from './networking.js';

export interface FieldError { field: string; message: string }

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

// Known fields per message (camelCase YAML names), enough to catch typos in spec.
const STRING_MATCH = ['exact', 'prefix', 'regex'];
const DESTINATION = ['host', 'subset', 'port'];
const HEADER_OPS = ['set', 'add', 'remove'];
const FIELDS: Record<string, string[]> = {
  vsSpec: ['hosts', 'gateways', 'http', 'tls', 'tcp', 'exportTo'],
  http: ['name', 'match', 'route', 'redirect', 'directResponse', 'delegate', 'rewrite', 'timeout', 'retries', 'fault', 'mirror', 'mirrors', 'mirrorPercentage', 'mirrorPercent', 'mirror_percent', 'corsPolicy', 'headers'],
  match: ['name', 'uri', 'scheme', 'method', 'authority', 'headers', 'withoutHeaders', 'queryParams', 'port', 'sourceLabels', 'sourceNamespace', 'gateways', 'ignoreUriCase', 'statPrefix'],
  routeDest: ['destination', 'weight', 'headers'],
  retries: ['attempts', 'perTryTimeout', 'retryOn', 'retryRemoteLocalities', 'retryIgnorePreviousHosts', 'backoff'],
  rewrite: ['uri', 'authority', 'uriRegexRewrite'],
  redirect: ['uri', 'authority', 'port', 'derivePort', 'scheme', 'redirectCode'],
  fault: ['delay', 'abort'],
  tcp: ['match', 'route'],
  drSpec: ['host', 'trafficPolicy', 'subsets', 'exportTo', 'workloadSelector'],
  trafficPolicy: ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'],
  portTrafficPolicy: ['port', 'loadBalancer', 'connectionPool', 'outlierDetection', 'tls'],
  subset: ['name', 'labels', 'trafficPolicy'],
  outlierDetection: ['consecutiveErrors', 'consecutive5xxErrors', 'consecutiveGatewayErrors', 'splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailures', 'interval', 'baseEjectionTime', 'maxEjectionPercent', 'minHealthPercent'],
};

const DURATION = /^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/;

class Errors {
  readonly list: FieldError[] = [];
  add(field: string, message: string): void { this.list.push({ field, message }); }
  unknown(o: unknown, kind: string, path: string): void {
    if (!isObj(o)) return;
    for (const k of Object.keys(o)) if (!FIELDS[kind].includes(k)) this.add(`${path}.${k}`, 'unknown field');
  }
  duration(v: unknown, path: string, minMs = 1): void {
    if (v === undefined) return;
    if (typeof v !== 'string' || !DURATION.test(v)) { this.add(path, `'${String(v)}' is not a duration (e.g. 1.5s, 250ms)`); return; }
    const ms = durationMs(v);
    if (ms < minMs) this.add(path, `must be at least ${minMs}ms`);
  }
  regex(v: unknown, path: string): void {
    if (typeof v !== 'string') return;
    // RE2 has no backreferences or lookaround; JavaScript accepts them, so check both.
    if (/\(\?[=!<]|\\[1-9]/.test(v)) { this.add(path, `'${v}' is not a valid RE2 regex (lookaround and backreferences are not supported)`); return; }
    try { new RegExp(v); } catch (e) { this.add(path, `'${v}' is not a valid regex: ${(e as Error).message}`); }
  }
  stringMatch(v: unknown, path: string): void {
    if (!isObj(v)) return;
    this.unknown(v, 'sm', path);
    const set = STRING_MATCH.filter((k) => v[k] !== undefined);
    if (set.length > 1) this.add(path, `only one of exact, prefix, regex may be set (got ${set.join(', ')})`);
    this.regex(v.regex, `${path}.regex`);
  }
}
FIELDS.sm = STRING_MATCH;
FIELDS.destination = DESTINATION;
FIELDS.headerOps = HEADER_OPS;

function durationMs(v: string): number {
  let total = 0;
  for (const m of v.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) {
    total += Number(m[1]) * ({ h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 }[m[2]] ?? 0);
  }
  return total;
}

function hosts(e: Errors, list: unknown, path: string, required: boolean): void {
  if (!Array.isArray(list) || list.length === 0) { if (required) e.add(path, 'at least one host is required'); return; }
  const seen = new Set<string>();
  list.forEach((h, i) => {
    if (typeof h !== 'string' || h.trim() === '') e.add(`${path}[${i}]`, 'must be a non-empty host name');
    else if (seen.has(h)) e.add(`${path}[${i}]`, `duplicate host '${h}'`);
    else if (h.includes('*') && !(h === '*' || /^\*\.[^*]+$/.test(h))) e.add(`${path}[${i}]`, `'${h}': a wildcard is only allowed as the leftmost label (*.example.com)`);
    if (typeof h === 'string') seen.add(h);
  });
}

function destination(e: Errors, d: unknown, path: string): void {
  if (!isObj(d)) { e.add(path, 'required'); return; }
  e.unknown(d, 'destination', path);
  if (typeof d.host !== 'string' || !d.host) e.add(`${path}.host`, 'required');
}

function weights(e: Errors, route: unknown[], path: string): void {
  let sum = 0;
  route.forEach((r, j) => {
    const w = isObj(r) ? r.weight : undefined;
    if (w === undefined) return;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 0) e.add(`${path}[${j}].weight`, `${String(w)} must be a non-negative integer`);
    else sum += w;
  });
  // Istio: with several destinations the weights must add up to 100 (unset counts as 0).
  if (route.length > 1 && sum !== 100) e.add(path, `weights must sum to 100 across the destinations (got ${sum})`);
}

function headers(e: Errors, h: unknown, path: string): void {
  if (!isObj(h)) return;
  for (const k of Object.keys(h)) if (k !== 'request' && k !== 'response') e.add(`${path}.${k}`, 'unknown field');
  for (const dir of ['request', 'response']) e.unknown(h[dir], 'headerOps', `${path}.${dir}`);
}

function httpRoute(e: Errors, r: unknown, path: string): void {
  if (!isObj(r)) { e.add(path, 'must be an object'); return; }
  e.unknown(r, 'http', path);
  const route = Array.isArray(r.route) ? r.route : [];
  if (!route.length && !r.redirect && !r.directResponse && !r.delegate) e.add(path, 'one of route, redirect, directResponse or delegate is required');
  if (r.redirect && route.length) e.add(`${path}.redirect`, 'cannot be combined with route');
  if (r.redirect && r.rewrite) e.add(`${path}.rewrite`, 'cannot be combined with redirect');
  (Array.isArray(r.match) ? r.match : []).forEach((m, i) => {
    const mp = `${path}.match[${i}]`;
    e.unknown(m, 'match', mp);
    if (!isObj(m)) return;
    for (const k of ['uri', 'scheme', 'method', 'authority']) e.stringMatch(m[k], `${mp}.${k}`);
    for (const k of ['headers', 'withoutHeaders', 'queryParams']) {
      if (!isObj(m[k])) continue;
      for (const [name, sm] of Object.entries(m[k] as Obj)) {
        if (k !== 'queryParams' && name !== name.toLowerCase()) e.add(`${mp}.${k}.${name}`, 'header names must be lowercase');
        e.stringMatch(sm, `${mp}.${k}.${name}`);
      }
    }
  });
  route.forEach((d, j) => { e.unknown(d, 'routeDest', `${path}.route[${j}]`); if (isObj(d)) { destination(e, d.destination, `${path}.route[${j}].destination`); headers(e, d.headers, `${path}.route[${j}].headers`); } });
  weights(e, route, `${path}.route`);
  e.duration(r.timeout, `${path}.timeout`, 0);
  if (isObj(r.retries)) {
    e.unknown(r.retries, 'retries', `${path}.retries`);
    const a = r.retries.attempts;
    if (a !== undefined && (typeof a !== 'number' || !Number.isInteger(a) || a < 0)) e.add(`${path}.retries.attempts`, `${String(a)} must be a non-negative integer`);
    e.duration(r.retries.perTryTimeout, `${path}.retries.perTryTimeout`);
    e.duration(r.retries.backoff, `${path}.retries.backoff`);
  }
  e.unknown(r.rewrite, 'rewrite', `${path}.rewrite`);
  if (isObj(r.rewrite) && isObj(r.rewrite.uriRegexRewrite)) e.regex(r.rewrite.uriRegexRewrite.match, `${path}.rewrite.uriRegexRewrite.match`);
  e.unknown(r.redirect, 'redirect', `${path}.redirect`);
  if (isObj(r.fault)) {
    e.unknown(r.fault, 'fault', `${path}.fault`);
    if (!r.fault.delay && !r.fault.abort) e.add(`${path}.fault`, 'one of delay or abort is required');
    if (isObj(r.fault.delay)) e.duration(r.fault.delay.fixedDelay, `${path}.fault.delay.fixedDelay`);
    for (const k of ['delay', 'abort']) {
      const p = isObj(r.fault[k]) ? (r.fault[k] as Obj).percentage : undefined;
      const v = isObj(p) ? p.value : undefined;
      if (v !== undefined && (typeof v !== 'number' || v < 0 || v > 100)) e.add(`${path}.fault.${k}.percentage.value`, 'must be between 0 and 100');
    }
  }
  if (r.mirror !== undefined) destination(e, r.mirror, `${path}.mirror`);
  const mp = isObj(r.mirrorPercentage) ? r.mirrorPercentage.value : undefined;
  if (mp !== undefined && (typeof mp !== 'number' || mp < 0 || mp > 100)) e.add(`${path}.mirrorPercentage.value`, 'must be between 0 and 100');
  headers(e, r.headers, `${path}.headers`);
}

export function validateVirtualService(spec: unknown): FieldError[] {
  const e = new Errors();
  if (!isObj(spec)) { e.add('spec', 'required'); return e.list; }
  e.unknown(spec, 'vsSpec', 'spec');
  hosts(e, spec.hosts, 'spec.hosts', true);
  (Array.isArray(spec.http) ? spec.http : []).forEach((r, i) => httpRoute(e, r, `spec.http[${i}]`));
  (Array.isArray(spec.tcp) ? spec.tcp : []).forEach((r, i) => {
    const path = `spec.tcp[${i}]`;
    e.unknown(r, 'tcp', path);
    const route = isObj(r) && Array.isArray(r.route) ? r.route : [];
    if (!route.length) e.add(`${path}.route`, 'at least one destination is required');
    route.forEach((d, j) => { if (isObj(d)) destination(e, d.destination, `${path}.route[${j}].destination`); });
    weights(e, route, `${path}.route`);
  });
  return e.list;
}

function trafficPolicy(e: Errors, p: unknown, path: string, kind = 'trafficPolicy'): void {
  if (!isObj(p)) return;
  e.unknown(p, kind, path);
  const lb = p.loadBalancer;
  if (isObj(lb) && lb.simple !== undefined && lb.consistentHash !== undefined) e.add(`${path}.loadBalancer`, 'only one of simple, consistentHash may be set');
  if (isObj(lb) && lb.simple !== undefined && !['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'].includes(String(lb.simple))) {
    e.add(`${path}.loadBalancer.simple`, `'${String(lb.simple)}' is not a load balancer (ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH)`);
  }
  const cp = p.connectionPool;
  if (isObj(cp)) {
    if (isObj(cp.tcp)) { e.duration(cp.tcp.connectTimeout, `${path}.connectionPool.tcp.connectTimeout`); e.duration(cp.tcp.idleTimeout, `${path}.connectionPool.tcp.idleTimeout`, 0); }
    if (isObj(cp.http)) e.duration(cp.http.idleTimeout, `${path}.connectionPool.http.idleTimeout`, 0);
  }
  const od = p.outlierDetection;
  if (isObj(od)) {
    e.unknown(od, 'outlierDetection', `${path}.outlierDetection`);
    e.duration(od.interval, `${path}.outlierDetection.interval`);
    e.duration(od.baseEjectionTime, `${path}.outlierDetection.baseEjectionTime`);
    for (const k of ['maxEjectionPercent', 'minHealthPercent']) {
      const v = od[k];
      if (v !== undefined && (typeof v !== 'number' || v < 0 || v > 100)) e.add(`${path}.outlierDetection.${k}`, 'must be between 0 and 100');
    }
  }
  if (kind === 'trafficPolicy') (Array.isArray(p.portLevelSettings) ? p.portLevelSettings : []).forEach((pl, i) => {
    const pp = `${path}.portLevelSettings[${i}]`;
    const n = isObj(pl) && isObj(pl.port) ? pl.port.number : undefined;
    if (typeof n !== 'number' || n < 1 || n > 65535) e.add(`${pp}.port.number`, 'a port number 1-65535 is required');
    trafficPolicy(e, pl, pp, 'portTrafficPolicy');
  });
}

export function validateDestinationRule(spec: unknown): FieldError[] {
  const e = new Errors();
  if (!isObj(spec)) { e.add('spec', 'required'); return e.list; }
  e.unknown(spec, 'drSpec', 'spec');
  if (typeof spec.host !== 'string' || spec.host.trim() === '') e.add('spec.host', 'required');
  trafficPolicy(e, spec.trafficPolicy, 'spec.trafficPolicy');
  const names = new Set<string>();
  (Array.isArray(spec.subsets) ? spec.subsets : []).forEach((s, i) => {
    const sp = `spec.subsets[${i}]`;
    e.unknown(s, 'subset', sp);
    const name = isObj(s) ? s.name : undefined;
    if (typeof name !== 'string' || !name) e.add(`${sp}.name`, 'required');
    else if (names.has(name)) e.add(`${sp}.name`, `duplicate subset '${name}'`);
    else names.add(name);
    if (isObj(s)) trafficPolicy(e, s.trafficPolicy, `${sp}.trafficPolicy`);
  });
  return e.list;
}

/** Validates an object by kind; undefined for kinds this validator does not know. */
export function validateIstioObject(kind: string, spec: unknown): FieldError[] | undefined {
  if (kind === 'VirtualService') return validateVirtualService(spec);
  if (kind === 'DestinationRule') return validateDestinationRule(spec);
  if (kind === 'Gateway') return validateGateway(spec);
  if (kind === 'ServiceEntry') return validateServiceEntry(spec);
  if (kind === 'Sidecar') return validateSidecar(spec);
  if (kind === 'PeerAuthentication') return validatePeerAuthentication(spec);
  if (kind === 'AuthorizationPolicy') return validateAuthorizationPolicy(spec);
  return undefined;
}
