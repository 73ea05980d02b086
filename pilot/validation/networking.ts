// Apply-time validation of the networking.istio.io kinds that describe listeners and
// registries rather than routes (what istiod's /validate rejects): Gateway servers (ports,
// protocols, `[namespace/]host`s, TLS settings, unique port names), ServiceEntry (hosts,
// ports, resolution against endpoints) and Sidecar (egress hosts and ports, outbound policy).
// Errors name the field path, Kubernetes style (`spec.servers[0].tls.credentialName`).
import { isIP } from 'node:net';
import type { FieldError } from './validate.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const FIELDS: Record<string, string[]> = {
  gwSpec: ['selector', 'servers'],
  server: ['port', 'bind', 'hosts', 'tls', 'name', 'defaultEndpoint'],
  port: ['number', 'protocol', 'name', 'targetPort'],
  tls: [
    'httpsRedirect', 'mode', 'serverCertificate', 'privateKey', 'caCertificates', 'caCrl', 'credentialName', 'credentialNames',
    'tlsCertificates', 'caCertCredentialName', 'subjectAltNames', 'verifyCertificateSpki', 'verifyCertificateHash',
    'minProtocolVersion', 'maxProtocolVersion', 'cipherSuites', 'insecureSkipVerify',
  ],
  seSpec: ['hosts', 'addresses', 'ports', 'location', 'resolution', 'endpoints', 'workloadSelector', 'exportTo', 'subjectAltNames'],
  endpoint: ['address', 'ports', 'labels', 'network', 'locality', 'weight', 'serviceAccount'],
  scSpec: ['workloadSelector', 'ingress', 'egress', 'outboundTrafficPolicy', 'inboundConnectionPool'],
  egress: ['port', 'bind', 'captureMode', 'hosts'],
  ingress: ['port', 'bind', 'captureMode', 'defaultEndpoint', 'tls', 'connectionPool'],
};

// Istio's protocol names (protocol.Parse, case-insensitive).
const PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'MONGO', 'TCP', 'TLS', 'MYSQL', 'REDIS', 'UDP'];
const GATEWAY_PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'MONGO', 'TCP', 'TLS'];
const TLS_MODES = ['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'];
const TLS_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'];
const RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HOST_LABEL = /^[A-Za-z0-9]([-A-Za-z0-9_]*[A-Za-z0-9])?$/;
const PORT_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

class Errors {
  readonly list: FieldError[] = [];
  add(field: string, message: string): void { this.list.push({ field, message }); }
  unknown(o: unknown, kind: string, path: string): void {
    if (!isObj(o)) return;
    for (const k of Object.keys(o)) if (!FIELDS[kind].includes(k)) this.add(`${path}.${k}`, 'unknown field');
  }
  list_(v: unknown, path: string): unknown[] {
    if (v === undefined) return [];
    if (!Array.isArray(v)) { this.add(path, 'must be a list'); return []; }
    return v;
  }
}

/** A DNS name, optionally with a leading `*` label (`*`, `*.example.com`, `reviews.default`). */
function wildcardHostError(h: string): string | undefined {
  if (h === '*') return undefined;
  if (h.length > 255) return 'longer than 255 characters';
  const labels = h.split('.');
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (l === '*' && i === 0) continue;
    if (l.includes('*')) return 'a wildcard is only allowed as the whole leftmost label (*.example.com)';
    if (!HOST_LABEL.test(l) || l.length > 63) return `label '${l}' is not a valid DNS label`;
  }
  return undefined;
}

/** Istio's `[namespace/]host` of Gateway servers and Sidecar egress (`~` only for Sidecars). */
function namespacedHost(e: Errors, h: unknown, path: string, allowTilde: boolean): void {
  if (typeof h !== 'string' || h === '') { e.add(path, 'must be a non-empty host'); return; }
  const parts = h.split('/');
  if (parts.length > 2) { e.add(path, `'${h}' must be <namespace>/<host> or <host>`); return; }
  const [ns, host] = parts.length === 2 ? parts : ['*', parts[0]];
  if (ns !== '*' && ns !== '.' && !(allowTilde && ns === '~') && !DNS_LABEL.test(ns)) {
    e.add(path, `'${h}': namespace '${ns}' must be *, .${allowTilde ? ', ~' : ''} or a namespace name`);
  }
  if (!host) { e.add(path, `'${h}': the host after '/' is empty`); return; }
  const bad = wildcardHostError(host);
  if (bad) e.add(path, `'${h}': ${bad}`);
}

function portNumber(e: Errors, n: unknown, path: string): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) e.add(path, `${n === undefined ? 'required' : String(n)}: a port number 1-65535 is required`);
}

function port(e: Errors, p: unknown, path: string, protocols: readonly string[], nameRequired: boolean): void {
  if (!isObj(p)) { e.add(path, 'required'); return; }
  e.unknown(p, 'port', path);
  portNumber(e, p.number, `${path}.number`);
  const proto = typeof p.protocol === 'string' ? p.protocol.toUpperCase() : undefined;
  if (!proto || !protocols.includes(proto)) e.add(`${path}.protocol`, `'${String(p.protocol ?? '')}' is not a protocol (${protocols.join(', ')})`);
  if (p.name === undefined || p.name === '') { if (nameRequired) e.add(`${path}.name`, 'required'); }
  else if (typeof p.name !== 'string' || !PORT_NAME.test(p.name)) e.add(`${path}.name`, `'${String(p.name)}' is not a valid port name`);
  if (p.targetPort !== undefined) portNumber(e, p.targetPort, `${path}.targetPort`);
}

function serverTls(e: Errors, tls: Obj, path: string): void {
  e.unknown(tls, 'tls', path);
  const mode = tls.mode === undefined ? 'PASSTHROUGH' : String(tls.mode);
  if (!TLS_MODES.includes(mode)) { e.add(`${path}.mode`, `'${mode}' is not a TLS mode (${TLS_MODES.join(', ')})`); return; }
  const has = (k: string): boolean => typeof tls[k] === 'string' && tls[k] !== '';
  const credential = has('credentialName') || (Array.isArray(tls.credentialNames) && tls.credentialNames.length > 0) || (Array.isArray(tls.tlsCertificates) && tls.tlsCertificates.length > 0);
  if (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
    if (!credential && !has('serverCertificate')) e.add(`${path}.credentialName`, `${mode} TLS requires credentialName or serverCertificate`);
    if (!credential && has('serverCertificate') && !has('privateKey')) e.add(`${path}.privateKey`, `${mode} TLS with serverCertificate requires privateKey`);
    if (mode !== 'SIMPLE' && !credential && has('serverCertificate') && !has('caCertificates')) e.add(`${path}.caCertificates`, `${mode} TLS with serverCertificate requires caCertificates`);
  }
  if (mode === 'ISTIO_MUTUAL') {
    for (const k of ['credentialName', 'serverCertificate', 'privateKey', 'caCertificates']) if (has(k)) e.add(`${path}.${k}`, 'must be empty with ISTIO_MUTUAL (the workload certificate is used)');
  }
  for (const k of ['minProtocolVersion', 'maxProtocolVersion']) {
    if (tls[k] !== undefined && !TLS_VERSIONS.includes(String(tls[k]))) e.add(`${path}.${k}`, `'${String(tls[k])}' is not a TLS version (${TLS_VERSIONS.join(', ')})`);
  }
  const min = TLS_VERSIONS.indexOf(String(tls.minProtocolVersion ?? 'TLS_AUTO'));
  const max = TLS_VERSIONS.indexOf(String(tls.maxProtocolVersion ?? 'TLS_AUTO'));
  if (min > 0 && max > 0 && max < min) e.add(`${path}.maxProtocolVersion`, 'must not be lower than minProtocolVersion');
  e.list_(tls.cipherSuites, `${path}.cipherSuites`).forEach((c, i) => {
    if (typeof c !== 'string' || !/^\[?[A-Z0-9-_|]+\]?$/.test(c)) e.add(`${path}.cipherSuites[${i}]`, `'${String(c)}' is not a cipher suite name`);
  });
}

export function validateGateway(spec: unknown): FieldError[] {
  const e = new Errors();
  if (!isObj(spec)) { e.add('spec', 'required'); return e.list; }
  e.unknown(spec, 'gwSpec', 'spec');
  if (spec.selector !== undefined && !isObj(spec.selector)) e.add('spec.selector', 'must be a map of labels');
  const servers = e.list_(spec.servers, 'spec.servers');
  if (!servers.length) e.add('spec.servers', 'at least one server is required');
  const portNames = new Map<string, number>();
  servers.forEach((s, i) => {
    const path = `spec.servers[${i}]`;
    if (!isObj(s)) { e.add(path, 'must be an object'); return; }
    e.unknown(s, 'server', path);
    port(e, s.port, `${path}.port`, GATEWAY_PROTOCOLS, true);
    const hosts = e.list_(s.hosts, `${path}.hosts`);
    if (!hosts.length) e.add(`${path}.hosts`, 'at least one host is required');
    hosts.forEach((h, j) => namespacedHost(e, h, `${path}.hosts[${j}]`, false));
    const protocol = isObj(s.port) && typeof s.port.protocol === 'string' ? s.port.protocol.toUpperCase() : '';
    const tls = s.tls;
    if (tls !== undefined && !isObj(tls)) e.add(`${path}.tls`, 'must be an object');
    else if (isObj(tls)) {
      if (tls.httpsRedirect === true && tls.mode === undefined && Object.keys(tls).length === 1) {
        if (protocol === 'HTTPS' || protocol === 'TLS') e.add(`${path}.tls.mode`, `a ${protocol} server needs TLS settings (mode and credentials), not only httpsRedirect`);
      } else serverTls(e, tls, `${path}.tls`);
    } else if (protocol === 'HTTPS' || protocol === 'TLS') e.add(`${path}.tls`, `required for ${protocol} servers`);
    const name = isObj(s.port) && typeof s.port.name === 'string' ? s.port.name : undefined;
    if (name) {
      const first = portNames.get(name);
      if (first !== undefined) e.add(`${path}.port.name`, `duplicate port name '${name}' (also spec.servers[${first}])`);
      else portNames.set(name, i);
    }
  });
  return e.list;
}

export function validateServiceEntry(spec: unknown): FieldError[] {
  const e = new Errors();
  if (!isObj(spec)) { e.add('spec', 'required'); return e.list; }
  e.unknown(spec, 'seSpec', 'spec');
  const hosts = e.list_(spec.hosts, 'spec.hosts');
  if (!hosts.length) e.add('spec.hosts', 'at least one host is required');
  const seen = new Set<string>();
  hosts.forEach((h, i) => {
    const path = `spec.hosts[${i}]`;
    if (typeof h !== 'string' || h === '') { e.add(path, 'must be a non-empty host'); return; }
    if (h === '*') e.add(path, "'*' is not allowed: name the hosts (or *.domain)");
    else if (h.includes('/')) e.add(path, `'${h}' must be a host name, without a namespace`);
    else { const bad = wildcardHostError(h); if (bad) e.add(path, `'${h}': ${bad}`); }
    if (seen.has(h)) e.add(path, `duplicate host '${h}'`);
    seen.add(h);
  });
  e.list_(spec.addresses, 'spec.addresses').forEach((a, i) => {
    const [ip, bits, extra] = typeof a === 'string' ? a.split('/') : [];
    const width = isIP(ip ?? '') === 6 ? 128 : 32;
    if (extra !== undefined || !isIP(ip ?? '') || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= width))) e.add(`spec.addresses[${i}]`, `'${String(a)}' is not an IP address or CIDR`);
  });
  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  e.list_(spec.ports, 'spec.ports').forEach((p, i) => {
    const path = `spec.ports[${i}]`;
    port(e, p, path, PROTOCOLS, true);
    if (!isObj(p)) return;
    if (typeof p.name === 'string') { if (portNames.has(p.name)) e.add(`${path}.name`, `duplicate port name '${p.name}'`); portNames.add(p.name); }
    if (typeof p.number === 'number') { if (portNumbers.has(p.number)) e.add(`${path}.number`, `duplicate port number ${p.number}`); portNumbers.add(p.number); }
  });
  if (spec.location !== undefined && !['MESH_EXTERNAL', 'MESH_INTERNAL'].includes(String(spec.location))) e.add('spec.location', `'${String(spec.location)}' is not a location (MESH_EXTERNAL, MESH_INTERNAL)`);
  const resolution = spec.resolution === undefined ? 'NONE' : String(spec.resolution);
  if (!RESOLUTIONS.includes(resolution)) e.add('spec.resolution', `'${resolution}' is not a resolution (${RESOLUTIONS.join(', ')})`);
  const endpoints = e.list_(spec.endpoints, 'spec.endpoints');
  if (endpoints.length && spec.workloadSelector !== undefined) e.add('spec.workloadSelector', 'cannot be combined with endpoints');
  if (resolution === 'NONE' && endpoints.length) e.add('spec.endpoints', 'must be empty with resolution NONE');
  if (resolution === 'STATIC' && !endpoints.length && spec.workloadSelector === undefined) e.add('spec.endpoints', 'at least one endpoint is required with resolution STATIC');
  if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !endpoints.length) {
    hosts.forEach((h, i) => { if (typeof h === 'string' && h.startsWith('*')) e.add(`spec.hosts[${i}]`, `'${h}': a wildcard host needs endpoints with resolution ${resolution}`); });
  }
  endpoints.forEach((ep, i) => {
    const path = `spec.endpoints[${i}]`;
    if (!isObj(ep)) { e.add(path, 'must be an object'); return; }
    e.unknown(ep, 'endpoint', path);
    const address = typeof ep.address === 'string' ? ep.address : '';
    if (!address) e.add(`${path}.address`, 'required');
    else if (resolution === 'STATIC' && !isIP(address) && !address.startsWith('unix://')) e.add(`${path}.address`, `'${address}' must be an IP address with resolution STATIC`);
    else if (!isIP(address) && !address.startsWith('unix://') && wildcardHostError(address)) e.add(`${path}.address`, `'${address}' is not an IP address or DNS name`);
    if (ep.ports !== undefined) {
      if (!isObj(ep.ports)) e.add(`${path}.ports`, 'must be a map of port names to numbers');
      else for (const [name, n] of Object.entries(ep.ports)) {
        if (!portNames.has(name)) e.add(`${path}.ports.${name}`, `port '${name}' is not one of spec.ports`);
        portNumber(e, n, `${path}.ports.${name}`);
      }
    }
  });
  return e.list;
}

export function validateSidecar(spec: unknown): FieldError[] {
  const e = new Errors();
  if (!isObj(spec)) { e.add('spec', 'required'); return e.list; }
  e.unknown(spec, 'scSpec', 'spec');
  const ws = spec.workloadSelector;
  if (ws !== undefined) {
    const labels = isObj(ws) ? ws.labels : undefined;
    if (!isObj(labels) || !Object.keys(labels).length) e.add('spec.workloadSelector.labels', 'at least one label is required');
  }
  const egress = e.list_(spec.egress, 'spec.egress');
  const ingress = e.list_(spec.ingress, 'spec.ingress');
  if (!egress.length && !ingress.length && spec.outboundTrafficPolicy === undefined && spec.inboundConnectionPool === undefined) e.add('spec', 'empty Sidecar: set egress, ingress or outboundTrafficPolicy');
  const ports = new Set<number>();
  egress.forEach((l, i) => {
    const path = `spec.egress[${i}]`;
    if (!isObj(l)) { e.add(path, 'must be an object'); return; }
    e.unknown(l, 'egress', path);
    const hosts = e.list_(l.hosts, `${path}.hosts`);
    if (!hosts.length) e.add(`${path}.hosts`, 'at least one host is required');
    hosts.forEach((h, j) => {
      if (typeof h === 'string' && !h.includes('/')) e.add(`${path}.hosts[${j}]`, `'${h}' must be <namespace>/<host> (*, . or ~ for the namespace)`);
      else namespacedHost(e, h, `${path}.hosts[${j}]`, true);
    });
    if (l.port === undefined) {
      // The catch-all listener (no port) must come last, and there is at most one.
      if (i !== egress.length - 1) e.add(path, 'an egress listener without a port must be the last one');
    } else {
      port(e, l.port, `${path}.port`, PROTOCOLS, false);
      const n = isObj(l.port) ? l.port.number : undefined;
      if (typeof n === 'number') { if (ports.has(n)) e.add(`${path}.port.number`, `duplicate egress port ${n}`); ports.add(n); }
    }
  });
  ingress.forEach((l, i) => {
    const path = `spec.ingress[${i}]`;
    if (!isObj(l)) { e.add(path, 'must be an object'); return; }
    e.unknown(l, 'ingress', path);
    port(e, l.port, `${path}.port`, PROTOCOLS, false);
  });
  const otp = spec.outboundTrafficPolicy;
  if (otp !== undefined) {
    const mode = isObj(otp) ? otp.mode : undefined;
    if (mode !== undefined && mode !== 'ALLOW_ANY' && mode !== 'REGISTRY_ONLY') e.add('spec.outboundTrafficPolicy.mode', `'${String(mode)}' is not a mode (ALLOW_ANY, REGISTRY_ONLY)`);
  }
  return e.list;
}
