// X.509 building blocks for the CA: RSA keys from node:crypto (fast, native), certificates
// and CSRs with node-forge (node:crypto cannot create certificates).
import { generateKeyPair, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { nativeRsaSigner } from '../../api/security/rsa-signer.js';
import { selfSignedCa, serialNumber } from '../../api/tls/x509.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface KeyPairPem { privateKeyPem: string; publicKeyPem: string }

/** An RSA key pair (PKCS#1 private key, the form node-forge reads). */
export async function generateRsaKey(bits = 2048): Promise<KeyPairPem> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

function subjectKeyId(publicKey: forge.pki.PublicKey): string {
  // RFC 5280 method 1: SHA-1 of the subjectPublicKey bit string.
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  return cert.generateSubjectKeyIdentifier().getBytes();
}

/** forge writes CRLF PEM; everything else (node, openssl, ConfigMaps) uses LF. */
function lf(pem: string): string {
  return pem.replace(/\r\n/g, '\n');
}

export interface RootOptions { organization: string; validityDays: number; keyPem: string }

/** A self-signed root: CA:true, keyCertSign/cRLSign, with a subject key identifier. */
export function createRootCert(opts: RootOptions): string {
  const key = forge.pki.privateKeyFromPem(opts.keyPem) as forge.pki.rsa.PrivateKey;
  const now = Date.now();
  const cert = selfSignedCa({
    publicKey: forge.pki.setRsaPublicKey(key.n, key.e), subject: [{ name: 'organizationName', value: opts.organization }],
    notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + opts.validityDays * 86_400_000),
    sign: (c) => c.sign(nativeRsaSigner(opts.keyPem), forge.md.sha256.create()),
  });
  return lf(forge.pki.certificateToPem(cert));
}

export interface LeafOptions {
  publicKey: forge.pki.PublicKey;
  issuerCertPem: string;
  issuerKeyPem: string;
  uris?: string[];
  dnsNames?: string[];
  ips?: string[];
  ttlSeconds: number;
  /** How far NotBefore is moved into the past, for peers whose clocks lag. */
  backdateSeconds: number;
}

/** An end-entity certificate: empty subject, critical SAN (as Istio issues), server+client auth. */
export function signLeafCert(opts: LeafOptions): string {
  const issuer = forge.pki.certificateFromPem(opts.issuerCertPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = opts.publicKey;
  cert.serialNumber = serialNumber();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - opts.backdateSeconds * 1000);
  cert.validity.notAfter = new Date(now + opts.ttlSeconds * 1000);
  cert.setSubject([]);
  cert.setIssuer(issuer.subject.attributes);
  const altNames = [
    ...(opts.uris ?? []).map((value) => ({ type: 6, value })),
    ...(opts.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(opts.ips ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames, critical: true },
    // Lets verifiers pick the right root when several roots share a subject (root rotation).
    { name: 'authorityKeyIdentifier', keyIdentifier: subjectKeyId(issuer.publicKey) },
  ]);
  cert.sign(nativeRsaSigner(opts.issuerKeyPem), forge.md.sha256.create());
  return lf(forge.pki.certificateToPem(cert));
}

export interface ParsedCsr { publicKey: forge.pki.PublicKey; uris: string[]; dnsNames: string[] }

/** Parses and verifies (self-signature) a PEM PKCS#10 request; throws with a reason. */
export function parseCsr(pem: string): ParsedCsr {
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(pem);
  } catch (e) {
    throw new Error(`csr: not a PEM PKCS#10 RSA certificate request (${(e as Error).message})`);
  }
  if (!csr.verify()) throw new Error('csr: signature does not verify');
  if (!csr.publicKey) throw new Error('csr: no public key');
  const uris: string[] = [];
  const dnsNames: string[] = [];
  const req = csr.getAttribute({ name: 'extensionRequest' }) as { extensions?: { name?: string; altNames?: { type: number; value: string }[] }[] } | null;
  for (const ext of req?.extensions ?? []) {
    if (ext.name !== 'subjectAltName') continue;
    for (const n of ext.altNames ?? []) {
      if (n.type === 6) uris.push(n.value);
      else if (n.type === 2) dnsNames.push(n.value);
    }
  }
  return { publicKey: csr.publicKey, uris, dnsNames };
}


export function publicKeyFromPem(pem: string): forge.pki.PublicKey {
  return forge.pki.publicKeyFromPem(pem);
}

/** Whether `cert` was issued (and signed) by `issuer`. */
export function isIssuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

export function isSelfSigned(cert: X509Certificate): boolean {
  return isIssuedBy(cert, cert);
}
