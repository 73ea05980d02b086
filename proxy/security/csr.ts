// The workload's key and certificate signing request: an RSA key from node:crypto (fast,
// native) and a PKCS#10 request with node-forge carrying the SPIFFE id as URI SAN.
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { nativeRsaSigner } from '../../api/security/rsa-signer.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A PKCS#1 PEM RSA private key. */
export async function generateWorkloadKey(bits = 2048): Promise<string> {
  const { privateKey } = await generateKeyPairAsync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return privateKey;
}

/** A PEM CSR with an empty subject and the given URI SANs (Istio's agent sends one: its SPIFFE id). */
export function createCsr(keyPem: string, uris: string[]): string {
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject([]);
  csr.setAttributes([{ name: 'extensionRequest', extensions: [{ name: 'subjectAltName', altNames: uris.map((value) => ({ type: 6, value })) }] }]);
  csr.sign(nativeRsaSigner(keyPem), forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr).replace(/\r\n/g, '\n');
}
