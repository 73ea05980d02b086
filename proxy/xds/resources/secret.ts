// envoy.extensions.transport_sockets.tls.v3.Secret, as a control plane serves it over SDS on
// the ADS stream (istiod's `kubernetes://<credentialName>` for a gateway): either a
// certificate chain with its key, or a validation context with trusted CAs. Inline data
// only; a secret naming files on the control plane's disk would not be the proxy's to read.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { FieldErrors, obj, str, type Obj } from './fields.js';

export type TlsSecret =
  | { kind: 'certificate'; certChainPem: string; keyPem: string }
  | { kind: 'roots'; caPem: string };

function inline(v: unknown, field: string, errors: FieldErrors): string | undefined {
  const d = obj(v);
  if (!d) { errors.add(field, 'required'); return undefined; }
  // Bytes arrive as base64 (JSON form) or as a Buffer (protobufjs objects).
  if (typeof d.inlineBytes === 'string') return Buffer.from(d.inlineBytes, 'base64').toString('utf8');
  if (d.inlineBytes instanceof Uint8Array) return Buffer.from(d.inlineBytes).toString('utf8');
  if (typeof d.inlineString === 'string') return d.inlineString;
  errors.add(field, 'inlineBytes or inlineString is required (file data sources are not accepted over SDS)');
  return undefined;
}

export function decodeSecret(raw: Obj): { name: string; value?: TlsSecret; errors: string[] } {
  const name = str(raw.name) ?? '';
  const errors = new FieldErrors(`Secret "${name}"`);
  if (!name) errors.add('name', 'required');
  const cert = obj(raw.tlsCertificate);
  const vc = obj(raw.validationContext);
  let value: TlsSecret | undefined;
  if (cert) {
    const certChainPem = inline(cert.certificateChain, 'tlsCertificate.certificateChain', errors);
    const keyPem = inline(cert.privateKey, 'tlsCertificate.privateKey', errors);
    if (certChainPem && keyPem) {
      // Checked here so a bad secret is NACKed instead of failing every handshake later.
      try { new X509Certificate(certChainPem); } catch (e) { errors.add('tlsCertificate.certificateChain', `not a PEM certificate: ${(e as Error).message}`); }
      try { createPrivateKey(keyPem); } catch { errors.add('tlsCertificate.privateKey', 'not a PEM private key'); }
      value = { kind: 'certificate', certChainPem, keyPem };
    }
  } else if (vc) {
    const caPem = inline(vc.trustedCa, 'validationContext.trustedCa', errors);
    if (caPem) {
      try { new X509Certificate(caPem); } catch (e) { errors.add('validationContext.trustedCa', `not a PEM certificate: ${(e as Error).message}`); }
      value = { kind: 'roots', caPem };
    }
  } else errors.add('type', 'tlsCertificate or validationContext is required');
  return errors.ok && value ? { name, value, errors: [] } : { name, errors: errors.list };
}
