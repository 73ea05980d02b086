// Certificate building blocks shared by every CA in the project (the API server's, the mesh
// CA, the webhook serving CAs), so serial numbers and CA extensions are made one way.
import { randomBytes } from 'node:crypto';
import forge from 'node-forge';

/** A positive random serial number (RFC 5280: at most 20 octets, non-negative, non-zero). */
export function serialNumber(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  if (b[0] === 0) b[0] = 0x01;
  return b.toString('hex');
}

export interface SelfSignedCaOptions {
  publicKey: forge.pki.PublicKey;
  subject: forge.pki.CertificateField[];
  notBefore: Date;
  notAfter: Date;
  /** Signs the finished certificate (node-forge's key, or a native signer). */
  sign(cert: forge.pki.Certificate): void;
}

/** A self-signed root: CA:true, keyCertSign/cRLSign, with a subject key identifier. */
export function selfSignedCa(opts: SelfSignedCaOptions): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = opts.publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = opts.notBefore;
  cert.validity.notAfter = opts.notAfter;
  cert.setSubject(opts.subject);
  cert.setIssuer(opts.subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  opts.sign(cert);
  return cert;
}
