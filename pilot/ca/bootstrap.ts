// One call for pilot: the CA from the Secrets in its namespace, the certificate service on
// 15012 (TLS), and the istio-ca-root-cert publisher. Everything through the Kubernetes API.
import type * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { KubeClient } from '../../api/kube/index.js';
import { CertificateAuthority } from './authority.js';
import { CAMetrics } from './metrics.js';
import { RootCertPublisher } from './root-publisher.js';
import { KubeSecretStore } from './secret-store.js';
import { CAServer } from './server.js';
import { KubeTokenReviewer, type TokenReviewer } from './token-reviewer.js';

export interface MeshCAOptions {
  /** pilot's namespace (POD_NAMESPACE): where the CA Secrets live, and istiod.<ns>.svc. */
  namespace: string;
  trustDomain?: string;
  host?: string;
  /** Default 15012; 0 picks a free port. */
  port?: number;
  /** Token audiences accepted from workloads (Istio: istio-ca). */
  audiences?: string[];
  /** Register the citadel_* metrics here (e.g. pilot's registry served on 15014). */
  registry?: Registry;
  /** Publish ConfigMap istio-ca-root-cert to every namespace (default true). */
  publishRootCert?: boolean;
  /** More services on the TLS port, given the token reviewer (pilot's authenticated ADS). */
  alsoServe?: (server: grpc.Server, reviewer: TokenReviewer) => void;
}

export interface MeshCA {
  ca: CertificateAuthority;
  server: CAServer;
  publisher?: RootCertPublisher;
  port: number;
  stop(): Promise<void>;
}

export async function startMeshCA(client: KubeClient, opts: MeshCAOptions): Promise<MeshCA> {
  const ca = await CertificateAuthority.load({ store: new KubeSecretStore(client, opts.namespace), trustDomain: opts.trustDomain });
  const reviewer = new KubeTokenReviewer(client, opts.audiences ?? ['istio-ca']);
  const alsoServe = opts.alsoServe;
  const server = new CAServer({
    ca, reviewer, namespace: opts.namespace,
    host: opts.host, port: opts.port ?? 15012, metrics: new CAMetrics(opts.registry),
    alsoServe: alsoServe ? (s) => alsoServe(s, reviewer) : undefined,
  });
  const { port } = await server.start();
  let publisher: RootCertPublisher | undefined;
  if (opts.publishRootCert !== false) {
    publisher = new RootCertPublisher(client, ca.rootBundle());
    await publisher.start();
  }
  return {
    ca, server, publisher, port,
    async stop() { publisher?.stop(); await server.stop(); },
  };
}
