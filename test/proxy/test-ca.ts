// A test mesh CA: a root and SPIFFE leaf certificates made the way pilot's CA makes them,
// plus a certificate source for the sidecar's SDS `default` / `ROOTCA` that can rotate.
import { X509Certificate } from 'node:crypto';
import { createRootCert, generateRsaKey, publicKeyFromPem, signLeafCert } from '../../pilot/ca/pki.js';
import type { WorkloadCert } from '../../proxy/security/cert-manager.js';
import type { CertificateSource } from '../../proxy/security/sds.js';

export interface TestCA {
  rootPem: string;
  keyPem: string;
  /** A leaf for these URI SANs (and DNS names), valid for ttlSeconds. */
  issue(uris: string[], dnsNames?: string[], ttlSeconds?: number): Promise<{ certPem: string; keyPem: string }>;
}

export async function makeTestCA(organization = 'cluster.local'): Promise<TestCA> {
  const key = await generateRsaKey();
  const rootPem = createRootCert({ organization, validityDays: 2, keyPem: key.privateKeyPem });
  return {
    rootPem,
    keyPem: key.privateKeyPem,
    async issue(uris, dnsNames = [], ttlSeconds = 3600) {
      const k = await generateRsaKey();
      const certPem = signLeafCert({
        publicKey: publicKeyFromPem(k.publicKeyPem), issuerCertPem: rootPem, issuerKeyPem: key.privateKeyPem,
        uris, dnsNames, ttlSeconds, backdateSeconds: 60,
      });
      return { certPem, keyPem: k.privateKeyPem };
    },
  };
}

/** SDS material for one workload, from the test CA; rotate() swaps in a fresh certificate. */
export class TestCertSource implements CertificateSource {
  private cert!: WorkloadCert;
  private roots: string[] | undefined;
  constructor(readonly spiffeId: string, private ca: TestCA, private readonly extraRoots: string[] = []) {}

  /** A root rotation step: from now on certificates come from `ca` and exactly `roots` are trusted. */
  reissue(ca: TestCA, roots: string[]): Promise<WorkloadCert> {
    this.ca = ca;
    this.roots = roots;
    return this.rotate();
  }

  async rotate(): Promise<WorkloadCert> {
    const { certPem, keyPem } = await this.ca.issue([this.spiffeId]);
    const x = new X509Certificate(certPem);
    this.cert = {
      spiffeId: this.spiffeId, keyPem, certChainPem: certPem, rootsPem: this.roots ?? [this.ca.rootPem, ...this.extraRoots],
      serialNumber: x.serialNumber, notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo),
    };
    return this.cert;
  }

  current(): WorkloadCert {
    return this.cert;
  }
}
