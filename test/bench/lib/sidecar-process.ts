// A Trellis sidecar as its own process for the benchmark: the real Sidecar class, fed by the
// bench's ADS server, with admin ports on ephemeral loopback ports. The only simulated part is
// SO_ORIGINAL_DST (there is no iptables REDIRECT on loopback): the bench passes, per capture
// port, the destination the redirected connection would have had, as sidecar.test.ts does.
import { X509Certificate } from 'node:crypto';
import { Sidecar } from '../../../proxy/sidecar.js';
import type { CertificateSource } from '../../../proxy/security/sds.js';
import type { SocketAddress } from '../../../proxy/interception/original-dst.js';
import type { ProxyIdentity } from '../../../proxy/xds/node.js';

export interface SidecarProcessConfig {
  pilotAddress: string;
  identity: ProxyIdentity;
  /** Capture port -> original destination of connections accepted on it. */
  originalDst: Record<string, SocketAddress>;
  /** The workload certificate for SDS `default` / `ROOTCA` (mTLS rows), issued by the bench's test CA. */
  tls?: { spiffeId: string; certPem: string; keyPem: string; rootPem: string };
}

/** A fixed certificate, as the cert manager would hold it after its first issuance. */
function fixedCertificate(t: NonNullable<SidecarProcessConfig['tls']>): CertificateSource {
  const x = new X509Certificate(t.certPem);
  const cert = {
    spiffeId: t.spiffeId, keyPem: t.keyPem, certChainPem: t.certPem, rootsPem: [t.rootPem],
    serialNumber: x.serialNumber, notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo),
  };
  return { spiffeId: t.spiffeId, current: () => cert };
}

const raw = process.argv[2];
if (!raw) {
  process.stderr.write('sidecar-process: usage: sidecar-process.js <json SidecarProcessConfig>\n');
  process.exit(2);
}
const cfg = JSON.parse(raw) as SidecarProcessConfig;
const debug = process.env.BENCH_DEBUG === '1';

const sidecar = new Sidecar({
  pilotAddress: cfg.pilotAddress,
  identity: cfg.identity,
  ports: { admin: 0, prometheus: 0, readiness: 0 },
  // Istio's default mesh config has access logging off; the bench measures the same.
  accessLog: () => undefined,
  tlsSecrets: cfg.tls ? fixedCertificate(cfg.tls) : undefined,
  log: debug ? (m) => process.stderr.write(`[${cfg.identity.podName}] ${m}\n`) : () => undefined,
  originalDst: (socket) => {
    const target = cfg.originalDst[String(socket.localPort)];
    if (!target) throw new Error(`sidecar-process: no original destination for capture port ${socket.localPort}`);
    return target;
  },
});

sidecar.start().then(
  () => process.send?.({ ports: sidecar.ports }),
  (err: Error) => {
    process.stderr.write(`sidecar-process: start failed: ${err.message}\n`);
    process.exit(1);
  },
);
const stop = (): void => { sidecar.stop().then(() => process.exit(0), () => process.exit(1)); };
process.on('SIGTERM', stop);
process.on('disconnect', stop);
