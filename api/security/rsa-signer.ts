// node-forge builds the X.509/PKCS#10 structures, but its pure-JS RSA takes ~300 ms per
// signature; this adapter lets forge's sign() use node:crypto's native RSA instead (~1 ms).
import { constants, createPrivateKey, privateEncrypt, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

// DER prefix of DigestInfo{ sha256, NULL } (RFC 8017 section 9.2, note 1).
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** A key object forge's cert.sign / csr.sign accept; always pair it with forge.md.sha256.create(). */
export function nativeRsaSigner(privateKeyPem: string | KeyObject): forge.pki.rsa.PrivateKey {
  const key = typeof privateKeyPem === 'string' ? createPrivateKey(privateKeyPem) : privateKeyPem;
  const signer = {
    sign(md: forge.md.MessageDigest): string {
      if (md.algorithm !== 'sha256') throw new Error(`nativeRsaSigner: digest ${md.algorithm} is not supported (use sha256)`);
      const digestInfo = Buffer.concat([SHA256_DIGEST_INFO, Buffer.from(md.digest().getBytes(), 'binary')]);
      return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, digestInfo).toString('binary');
    },
  };
  return signer as unknown as forge.pki.rsa.PrivateKey;
}
