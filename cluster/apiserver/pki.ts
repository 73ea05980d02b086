// Cluster PKI: a CA generated once and kept in <dataDir>/pki, a serving certificate
// re-issued on each start (its SANs follow the listen addresses), and the key that
// signs ServiceAccount tokens.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
import { selfSignedCa, serialNumber } from '../../api/tls/x509.js';

export interface Pki {
  caCertPem: string;
  caKeyPem: string;
  servingCertPem: string;
  servingKeyPem: string;
  saKeyPem: string;
  saPublicKeyPem: string;
}

export interface ServingNames { ips: string[]; dnsNames: string[] }

function newRsaKeyPem(): string {
  // node's native keygen: forge's pure-JS RSA generation takes seconds.
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
}

function publicOf(key: forge.pki.rsa.PrivateKey): forge.pki.rsa.PublicKey {
  return forge.pki.setRsaPublicKey(key.n, key.e);
}

function readOrCreate(file: string, make: () => string): string {
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8');
  const pem = make();
  fs.writeFileSync(file + '.tmp', pem, { mode: 0o600 });
  fs.renameSync(file + '.tmp', file);
  return pem;
}

function makeCa(keyPem: string, commonName: string): string {
  const key = forge.pki.privateKeyFromPem(keyPem);
  const now = Date.now();
  const cert = selfSignedCa({
    publicKey: publicOf(key), subject: [{ name: 'commonName', value: commonName }],
    notBefore: new Date(now - 3600_000), notAfter: new Date(now + 10 * 365 * 86400_000),
    sign: (c) => c.sign(key, forge.md.sha256.create()),
  });
  return forge.pki.certificateToPem(cert);
}

export function issueServingCert(caCertPem: string, caKeyPem: string, names: ServingNames, commonName = 'kube-apiserver'): { certPem: string; keyPem: string } {
  const caCert = forge.pki.certificateFromPem(caCertPem);
  const caKey = forge.pki.privateKeyFromPem(caKeyPem);
  const keyPem = newRsaKeyPem();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicOf(key);
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 86400_000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...[...new Set(names.dnsNames)].map((value) => ({ type: 2, value })),
    ...[...new Set(names.ips)].map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/**
 * A client certificate for X.509 authentication: CN is the user name, each O a group
 * (Kubernetes' convention), extended key usage clientAuth only.
 */
export function issueClientCert(caCertPem: string, caKeyPem: string, user: string, groups: string[] = [], days = 365): { certPem: string; keyPem: string } {
  if (!user) throw new Error('client certificate: user (CN) must not be empty');
  const caCert = forge.pki.certificateFromPem(caCertPem);
  const caKey = forge.pki.privateKeyFromPem(caKeyPem);
  const keyPem = newRsaKeyPem();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicOf(key);
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(Date.now() - 300_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86400_000);
  cert.setSubject([...groups.map((value) => ({ name: 'organizationName', value })), { name: 'commonName', value: user }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

export function ensurePki(dataDir: string, names: ServingNames, clusterName: string): Pki {
  const dir = path.join(dataDir, 'pki');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caKeyPem = readOrCreate(path.join(dir, 'ca.key'), newRsaKeyPem);
  const caCertPem = readOrCreate(path.join(dir, 'ca.crt'), () => makeCa(caKeyPem, `${clusterName}-ca`));
  const saKeyPem = readOrCreate(path.join(dir, 'sa.key'), newRsaKeyPem);
  const saPublicKeyPem = forge.pki.publicKeyToPem(publicOf(forge.pki.privateKeyFromPem(saKeyPem)));
  const serving = issueServingCert(caCertPem, caKeyPem, names);
  fs.writeFileSync(path.join(dir, 'apiserver.crt'), serving.certPem, { mode: 0o644 });
  fs.writeFileSync(path.join(dir, 'apiserver.key'), serving.keyPem, { mode: 0o600 });
  return { caCertPem, caKeyPem, servingCertPem: serving.certPem, servingKeyPem: serving.keyPem, saKeyPem, saPublicKeyPem };
}
