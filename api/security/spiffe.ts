// SPIFFE identities as Istio uses them: spiffe://<trust-domain>/ns/<namespace>/sa/<serviceaccount>,
// carried as the URI SAN of X.509 workload certificates.
import { X509Certificate } from 'node:crypto';

export const SPIFFE_SCHEME = 'spiffe://';

export interface SpiffeIdentity { trustDomain: string; namespace: string; serviceAccount: string }

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `${SPIFFE_SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** Parses an Istio-shaped SPIFFE id; undefined for anything else. */
export function parseSpiffeId(uri: string): SpiffeIdentity | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (!m) return undefined;
  return { trustDomain: m[1], namespace: m[2], serviceAccount: m[3] };
}

/**
 * The URI SANs of a `subjectaltname` string as node prints it
 * (`URI:spiffe://a, DNS:b`; values with special characters are JSON-quoted).
 */
export function uriSansFromAltNames(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  // Entries are separated by ", "; a quoted value may itself contain commas.
  const re = /(\w+(?: \w+)*):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(subjectAltName)) !== null) {
    if (m[0] === '') break;
    if (m[1] !== 'URI') continue;
    const raw = m[2];
    out.push(raw.startsWith('"') ? JSON.parse(raw) as string : raw);
  }
  return out;
}

/** The URI SANs of a certificate (PEM, DER or parsed). */
export function uriSans(cert: string | Buffer | X509Certificate): string[] {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return uriSansFromAltNames(x.subjectAltName);
}

/** The SPIFFE id of a certificate: its first spiffe:// URI SAN. */
export function spiffeIdOf(cert: string | Buffer | X509Certificate): string | undefined {
  return uriSans(cert).find((u) => u.startsWith(SPIFFE_SCHEME));
}

/** Splits a PEM bundle into its certificates (each a full PEM block with a trailing newline). */
export function splitPemBundle(bundle: string): string[] {
  return bundle.replace(/\r\n/g, '\n').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((b) => `${b}\n`) ?? [];
}
