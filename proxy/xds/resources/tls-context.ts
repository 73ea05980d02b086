// DownstreamTlsContext / UpstreamTlsContext (envoy.transport_sockets.tls): where the
// certificate and the trust roots come from (SDS `default` / `ROOTCA` served by the
// proxy's own cert manager, inline PEM or files), which SANs a peer must carry, ALPN.
import fs from 'node:fs';
import type tls from 'node:tls';
import { TYPE_URL } from '../../../api/xds/protos.js';
import { arr, FieldErrors, obj, str, wrapped, type Obj } from './fields.js';
import { stringMatcher, type StringTest } from './route.js';

export const TLS_TRANSPORT = 'envoy.transport_sockets.tls';
export const RAW_BUFFER_TRANSPORT = 'envoy.transport_sockets.raw_buffer';
/** The SDS names Istio's agent serves: the workload certificate and the trust bundle. */
export const SDS_DEFAULT = 'default';
export const SDS_ROOTCA = 'ROOTCA';

export type CertificateSource = { kind: 'sds'; name: string } | { kind: 'static'; certChainPem: string; keyPem: string };
export type RootsSource = { kind: 'sds'; name: string } | { kind: 'static'; caPem: string };

export interface SanMatcher {
  test: StringTest;
  /** For error messages: `exact:spiffe://...`. */
  text: string;
}

/** TlsParameters: protocol versions (Node names) and cipher suites (OpenSSL names). */
export interface TlsParams { minVersion?: tls.SecureVersion; maxVersion?: tls.SecureVersion; ciphers?: string }

export interface CommonTlsConfig {
  certificate?: CertificateSource;
  roots?: RootsSource;
  sanMatchers: SanMatcher[];
  alpn: string[];
  params: TlsParams;
  /** Identifies the settings (pool keys, context caches); secrets are resolved per handshake. */
  key: string;
}

export interface DownstreamTlsConfig extends CommonTlsConfig {
  side: 'downstream';
  requireClientCertificate: boolean;
}

export interface UpstreamTlsConfig extends CommonTlsConfig {
  side: 'upstream';
  sni?: string;
}

/** envoy.config.core.v3.DataSource: filename, inlineString or inlineBytes (base64 in JSON form). */
function dataSource(v: unknown, field: string, errors: FieldErrors): string | undefined {
  const d = obj(v);
  if (!d) {
    errors.add(field, 'required');
    return undefined;
  }
  if (typeof d.inlineString === 'string') return d.inlineString;
  if (typeof d.inlineBytes === 'string') return Buffer.from(d.inlineBytes, 'base64').toString('utf8');
  if (typeof d.filename === 'string') {
    try {
      return fs.readFileSync(d.filename, 'utf8');
    } catch (e) {
      errors.add(`${field}.filename`, `cannot read "${d.filename}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return undefined;
    }
  }
  errors.add(field, 'one of filename, inlineString, inlineBytes is required');
  return undefined;
}

/**
 * An SDS secret name. `default` (certificate) and `ROOTCA` (roots) are the proxy's own, as
 * Istio's agent serves them; any other name is fetched from the control plane over ADS
 * (a gateway's `kubernetes://<credentialName>`). The workload key is never a trust bundle
 * and the trust bundle never a certificate.
 */
function sdsName(v: unknown, field: string, errors: FieldErrors, slot: 'certificate' | 'roots'): string | undefined {
  const s = obj(v) ?? {};
  const name = str(s.name) ?? '';
  const wrong = slot === 'certificate' ? SDS_ROOTCA : SDS_DEFAULT;
  if (!name || name === wrong) {
    errors.add(`${field}.name`, `SDS secret "${name}" cannot provide the ${slot === 'certificate' ? 'certificate' : 'trusted roots'}`);
    return undefined;
  }
  // Other names are fetched over the ADS stream only: there is no local SDS agent (sds-grpc) to ask.
  if (!isLocalSdsName(name) && obj(obj(s.sdsConfig)?.ads) === undefined) {
    errors.add(`${field}.name`, `SDS secret "${name}" is not served by this proxy (only "${SDS_DEFAULT}"/"${SDS_ROOTCA}" locally; other names need sdsConfig.ads)`);
    return undefined;
  }
  return name;
}

/** Whether an SDS name is resolved by the proxy itself rather than fetched over ADS. */
export function isLocalSdsName(name: string): boolean {
  return name === SDS_DEFAULT || name === SDS_ROOTCA;
}

/** The SDS names a TLS context needs from the control plane. */
export function remoteSdsNames(c: Pick<CommonTlsConfig, 'certificate' | 'roots'>): string[] {
  const out: string[] = [];
  if (c.certificate?.kind === 'sds' && !isLocalSdsName(c.certificate.name)) out.push(c.certificate.name);
  if (c.roots?.kind === 'sds' && !isLocalSdsName(c.roots.name)) out.push(c.roots.name);
  return out;
}

const TLS_VERSIONS: Record<string, tls.SecureVersion | undefined> = { TLS_AUTO: undefined, TLSv1_0: 'TLSv1', TLSv1_1: 'TLSv1.1', TLSv1_2: 'TLSv1.2', TLSv1_3: 'TLSv1.3' };

function tlsParams(raw: Obj | undefined, field: string, errors: FieldErrors): TlsParams {
  if (!raw) return {};
  const version = (k: string): tls.SecureVersion | undefined => {
    const v = raw[k];
    if (v === undefined || v === null || v === 0) return undefined;
    const name = typeof v === 'number' ? Object.keys(TLS_VERSIONS)[v] : String(v);
    if (name === undefined || !(name in TLS_VERSIONS)) { errors.add(`${field}.${k}`, `"${String(v)}" is not a TLS version (${Object.keys(TLS_VERSIONS).join(', ')})`); return undefined; }
    return TLS_VERSIONS[name];
  };
  const minVersion = version('tlsMinimumProtocolVersion');
  const maxVersion = version('tlsMaximumProtocolVersion');
  if (minVersion && maxVersion && minVersion > maxVersion) errors.add(`${field}.tlsMaximumProtocolVersion`, 'lower than tlsMinimumProtocolVersion');
  // Envoy's `[A|B]` equal-preference groups become a plain OpenSSL list.
  const suites = arr(raw.cipherSuites).flatMap((c) => (typeof c === 'string' ? c.replace(/[[\]]/g, '').split('|') : [])).filter(Boolean);
  return { minVersion, maxVersion, ciphers: suites.length ? suites.join(':') : undefined };
}

function sanMatchers(ctx: Obj, field: string, errors: FieldErrors): SanMatcher[] {
  const out: SanMatcher[] = [];
  arr(ctx.matchSubjectAltNames).forEach((m, i) => {
    const mo = obj(m) ?? {};
    const test = stringMatcher(mo, `${field}.matchSubjectAltNames[${i}]`, errors);
    const kind = ['exact', 'prefix', 'suffix', 'contains'].find((k) => typeof mo[k] === 'string');
    const text = kind ? `${kind}:${String(mo[kind])}` : `safeRegex:${str(obj(mo.safeRegex)?.regex) ?? ''}`;
    if (test) out.push({ test, text });
  });
  arr(ctx.matchTypedSubjectAltNames).forEach((m, i) => {
    const mo = obj(m) ?? {};
    const mm = obj(mo.matcher) ?? {};
    const test = stringMatcher(mm, `${field}.matchTypedSubjectAltNames[${i}].matcher`, errors);
    const kind = ['exact', 'prefix', 'suffix', 'contains'].find((k) => typeof mm[k] === 'string');
    if (test) out.push({ test, text: kind ? `${kind}:${String(mm[kind])}` : 'safeRegex' });
  });
  return out;
}

function validationContext(ctx: Obj, field: string, errors: FieldErrors): { roots?: RootsSource; sans: SanMatcher[] } {
  const trusted = ctx.trustedCa === undefined ? undefined : dataSource(ctx.trustedCa, `${field}.trustedCa`, errors);
  return { roots: trusted !== undefined ? { kind: 'static', caPem: trusted } : undefined, sans: sanMatchers(ctx, field, errors) };
}

function decodeCommon(raw: Obj | undefined, field: string, errors: FieldErrors): Omit<CommonTlsConfig, 'key'> {
  const c = raw ?? {};
  let certificate: CertificateSource | undefined;
  const sdsCerts = arr(c.tlsCertificateSdsSecretConfigs);
  const inlineCerts = arr(c.tlsCertificates);
  if (sdsCerts.length > 1 || inlineCerts.length > 1) errors.add(`${field}.tlsCertificates`, 'only one certificate is supported');
  if (sdsCerts.length > 0) {
    const name = sdsName(sdsCerts[0], `${field}.tlsCertificateSdsSecretConfigs[0]`, errors, 'certificate');
    if (name) certificate = { kind: 'sds', name };
  } else if (inlineCerts.length > 0) {
    const t = obj(inlineCerts[0]) ?? {};
    const certChainPem = dataSource(t.certificateChain, `${field}.tlsCertificates[0].certificateChain`, errors);
    const keyPem = dataSource(t.privateKey, `${field}.tlsCertificates[0].privateKey`, errors);
    if (certChainPem && keyPem) certificate = { kind: 'static', certChainPem, keyPem };
  }
  let roots: RootsSource | undefined;
  let sans: SanMatcher[] = [];
  const combined = obj(c.combinedValidationContext);
  if (combined) {
    const def = validationContext(obj(combined.defaultValidationContext) ?? {}, `${field}.combinedValidationContext.defaultValidationContext`, errors);
    sans = def.sans;
    const name = sdsName(combined.validationContextSdsSecretConfig, `${field}.combinedValidationContext.validationContextSdsSecretConfig`, errors, 'roots');
    roots = name ? { kind: 'sds', name } : def.roots;
  } else if (obj(c.validationContextSdsSecretConfig)) {
    const name = sdsName(c.validationContextSdsSecretConfig, `${field}.validationContextSdsSecretConfig`, errors, 'roots');
    if (name) roots = { kind: 'sds', name };
  } else if (obj(c.validationContext)) {
    const v = validationContext(obj(c.validationContext) ?? {}, `${field}.validationContext`, errors);
    roots = v.roots;
    sans = v.sans;
  }
  const alpn: string[] = [];
  arr(c.alpnProtocols).forEach((p, i) => {
    if (typeof p !== 'string' || p === '' || p.length > 255) errors.add(`${field}.alpnProtocols[${i}]`, 'must be a non-empty string of at most 255 bytes');
    else alpn.push(p);
  });
  return { certificate, roots, sanMatchers: sans, alpn, params: tlsParams(obj(c.tlsParams), `${field}.tlsParams`, errors) };
}

function keyOf(common: Omit<CommonTlsConfig, 'key'>, extra: object): string {
  const cert = common.certificate?.kind === 'sds' ? `sds:${common.certificate.name}` : common.certificate ? `pem:${common.certificate.certChainPem.length}:${common.certificate.certChainPem.slice(-64)}` : '';
  const roots = common.roots?.kind === 'sds' ? `sds:${common.roots.name}` : common.roots ? `pem:${common.roots.caPem.slice(-64)}` : '';
  return JSON.stringify([cert, roots, common.sanMatchers.map((m) => m.text), common.alpn, common.params, extra]);
}

export function decodeDownstreamTls(tc: Obj, field: string, errors: FieldErrors): DownstreamTlsConfig | undefined {
  const before = errors.list.length;
  const common = decodeCommon(obj(tc.commonTlsContext), `${field}.commonTlsContext`, errors);
  const requireClientCertificate = wrapped(tc.requireClientCertificate) === true;
  if (!common.certificate) errors.add(`${field}.commonTlsContext`, 'a server certificate (tlsCertificates or tlsCertificateSdsSecretConfigs) is required');
  if (requireClientCertificate && !common.roots) errors.add(`${field}.commonTlsContext`, 'requireClientCertificate needs a validation context with trusted roots');
  if (errors.list.length !== before) return undefined;
  return { side: 'downstream', ...common, requireClientCertificate, key: keyOf(common, { requireClientCertificate }) };
}

export function decodeUpstreamTls(tc: Obj, field: string, errors: FieldErrors): UpstreamTlsConfig | undefined {
  const before = errors.list.length;
  const common = decodeCommon(obj(tc.commonTlsContext), `${field}.commonTlsContext`, errors);
  const sni = str(tc.sni) || undefined;
  if (sni !== undefined && sni.length > 255) errors.add(`${field}.sni`, 'longer than 255 bytes');
  if (errors.list.length !== before) return undefined;
  return { side: 'upstream', ...common, sni, key: keyOf(common, { sni }) };
}

/** A transportSocket: TLS (with its context), raw_buffer (plaintext), or an error. */
export function decodeTransportSocket<T>(raw: Obj, field: string, errors: FieldErrors, tls: (tc: Obj, field: string, errors: FieldErrors) => T | undefined, tlsType: string): T | 'plaintext' | undefined {
  const name = str(raw.name) ?? '';
  const tc = obj(raw.typedConfig);
  const type = str(tc?.['@type']);
  if (name === RAW_BUFFER_TRANSPORT || type === TYPE_URL.rawBuffer) return 'plaintext';
  if (name === TLS_TRANSPORT || type === tlsType) {
    if (!tc || type !== tlsType) {
      errors.add(`${field}.typedConfig`, `must be ${tlsType}`);
      return undefined;
    }
    return tls(tc, `${field}.typedConfig`, errors);
  }
  errors.add(`${field}.name`, `transport socket "${name}" is not supported (${TLS_TRANSPORT}, ${RAW_BUFFER_TRANSPORT})`);
  return undefined;
}
