// A self-signed CA and a serving certificate for an admission webhook's Service (the
// injector's, pilot's validation), made at start-up. The CA key lives only in the process's
// memory: it is never written out or logged, and only the CA certificate leaves the process
// (as the webhook configuration's caBundle).
import crypto from 'node:crypto';
import net from 'node:net';
import forge from 'node-forge';
import { selfSignedCa, serialNumber } from './x509.js';

export interface ServingCertificate {
  caCertPem: string;
  certPem: string;
  keyPem: string;
}

export interface ServingCertificateOptions {
  /** DNS names for the serving certificate; the first one is also the CN. */
  dnsNames: string[];
  /** IP SANs (tests connect to 127.0.0.1). */
  ipAddresses?: string[];
  validityDays?: number;
  /** Common name of the self-signed CA (names whose webhook it is). */
  caName?: string;
}

/** The names a Service is reachable by: name, name.ns, name.ns.svc, name.ns.svc.<domain>. */
export function serviceDnsNames(service: string, namespace: string, domain = 'cluster.local'): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.${domain}`, `${service}.${namespace}`, service];
}

// RSA keys come from node's native generator: node-forge's pure-JS one takes seconds.
function rsaKeyPair(): forge.pki.rsa.KeyPair {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const priv = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  const pub = forge.pki.setRsaPublicKey(priv.n, priv.e);
  return { privateKey: priv, publicKey: pub };
}

function validityWindow(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  // Back-dated a little so a peer with a slightly slow clock accepts it.
  return { notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + days * 86_400_000) };
}

export function generateServingCertificate(opts: ServingCertificateOptions): ServingCertificate {
  if (opts.dnsNames.length === 0) throw new Error('serving certificate: dnsNames must not be empty');
  const days = opts.validityDays ?? 3650;

  const caKeys = rsaKeyPair();
  const caSubject = [{ name: 'organizationName', value: 'Trellis' }, { name: 'commonName', value: opts.caName ?? 'trellis-webhook-ca' }];
  const ca = selfSignedCa({
    publicKey: caKeys.publicKey, subject: caSubject, ...validityWindow(days),
    sign: (c) => c.sign(caKeys.privateKey, forge.md.sha256.create()),
  });

  const keys = rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  Object.assign(cert.validity, validityWindow(days));
  cert.setSubject([{ name: 'organizationName', value: 'Trellis' }, { name: 'commonName', value: opts.dnsNames[0] }]);
  cert.setIssuer(caSubject);
  const altNames: { type: number; value?: string; ip?: string }[] = opts.dnsNames.map((value) => ({ type: 2, value }));
  for (const ip of opts.ipAddresses ?? []) {
    if (!net.isIP(ip)) throw new Error(`serving certificate: ipAddresses: "${ip}" is not an IP address`);
    altNames.push({ type: 7, ip });
  }
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKeys.privateKey, forge.md.sha256.create());

  return {
    caCertPem: forge.pki.certificateToPem(ca),
    certPem: forge.pki.certificateToPem(cert),
    keyPem: forge.pki.privateKeyToPem(keys.privateKey),
  };
}
