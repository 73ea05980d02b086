// Shared set-up for the security tests: a real apiserver (MemoryStore) on loopback, an admin
// client, ServiceAccounts with `istio-ca` tokens, and a CA server on 127.0.0.1.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { KubeClient, R, isAlreadyExists, type KubeObject } from '../../api/kube/index.js';
import { startApiServer, type ApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';
import { CAServer, CertificateAuthority, KubeSecretStore, KubeTokenReviewer, type CAOptions, type SecretStore } from '../../pilot/ca/index.js';
import { generateRsaKey } from '../../pilot/ca/pki.js';
import { nativeRsaSigner } from '../../api/security/rsa-signer.js';

export const CA_NAMESPACE = 'istio-system';

export interface TestCluster {
  api: ApiServer;
  client: KubeClient;
  /** Creates namespace + ServiceAccount (idempotent) and returns a token for audience istio-ca. */
  tokenFor(namespace: string, serviceAccount: string, audiences?: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startCluster(): Promise<TestCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-security-'));
  const api = await startApiServer({ dataDir: dir, listen: [{ host: '127.0.0.1', port: 0 }], store: new MemoryStore() });
  const client = new KubeClient({ server: api.url, caPem: api.caCertPem, token: api.adminToken }, 'trellis-security-test');
  const ensure = async (r: typeof R.namespaces, obj: KubeObject): Promise<void> => {
    try { await client.create(r, obj); } catch (e) { if (!isAlreadyExists(e)) throw e; }
  };
  await ensure(R.namespaces, { metadata: { name: CA_NAMESPACE } });
  return {
    api, client,
    async tokenFor(namespace, serviceAccount, audiences = ['istio-ca']) {
      await ensure(R.namespaces, { metadata: { name: namespace } });
      await ensure(R.serviceAccounts, { metadata: { name: serviceAccount, namespace } });
      const res = await client.createSubresource<{ status: { token: string } }>(R.serviceAccounts, serviceAccount, namespace, 'token', {
        apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences, expirationSeconds: 3600 },
      });
      return res.status.token;
    },
    async stop() {
      await client.close();
      await api.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunningCA { ca: CertificateAuthority; server: CAServer; address: string; stop(): Promise<void> }

/** Loads (or creates) the CA from the given store and serves it on 127.0.0.1:<ephemeral>. */
export async function startCA(cluster: TestCluster, opts: Partial<CAOptions> & { store?: SecretStore; warnings?: string[] } = {}): Promise<RunningCA> {
  const ca = await CertificateAuthority.load({ store: opts.store ?? new KubeSecretStore(cluster.client, CA_NAMESPACE), ...opts });
  const server = new CAServer({
    ca, reviewer: new KubeTokenReviewer(cluster.client), namespace: CA_NAMESPACE, host: '127.0.0.1', port: 0,
    log: () => undefined, warn: (m) => opts.warnings?.push(m),
  });
  const { port } = await server.start();
  return { ca, server, address: `127.0.0.1:${port}`, stop: () => server.stop() };
}

/** A CA certificate signed by `issuer` (or self-signed), for building `cacerts` Secrets in tests. */
export async function makeCACert(cn: string, issuer?: { certPem: string; keyPem: string }): Promise<{ certPem: string; keyPem: string }> {
  const { privateKeyPem } = await generateRsaKey();
  const key = forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '0' + forge.util.bytesToHex(forge.random.getBytesSync(15));
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000);
  const subject = [{ name: 'organizationName', value: 'cluster.local' }, { name: 'commonName', value: cn }];
  cert.setSubject(subject);
  const issuerCert = issuer ? forge.pki.certificateFromPem(issuer.certPem) : undefined;
  cert.setIssuer(issuerCert ? issuerCert.subject.attributes : subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(nativeRsaSigner(issuer ? issuer.keyPem : privateKeyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n'), keyPem: privateKeyPem };
}
