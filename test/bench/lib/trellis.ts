// Trellis sidecars for the benchmark, each its own process (lib/sidecar-process.ts) with its
// own in-bench ADS server holding the resources pilot would send it, in Istio's shape:
//   client sidecar: virtualOutbound (useOriginalDst) -> 0.0.0.0_9080 (HCM, RDS "9080")
//                   -> EDS cluster outbound|9080||bench-upstream... -> endpoint
//   server sidecar: virtualInbound (original_dst) -> chain for the app port (HCM, inline
//                   route) -> STATIC cluster inbound|<app port>|| -> the app on loopback
// With mTLS (the contract in /work/brief: automatic mTLS, STRICT inbound) the client's cluster
// carries transportSocketMatches and its endpoint the tlsMode=istio metadata; the server's
// chain requires a client certificate; both get their SDS `default`/`ROOTCA` from a test CA.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { TYPE_URL } from '../../../api/xds/protos.js';
import { TestAdsServer } from '../../proxy/ads-server.js';
import {
  assignment, edsCluster, freePort, originalDstCluster, outboundCluster, routeConfiguration, serviceListener,
  staticCluster, virtualHost, virtualInbound, virtualOutbound,
} from '../../proxy/fixtures.js';
import type { ProxyIdentity } from '../../../proxy/xds/node.js';
import type { SocketAddress } from '../../../proxy/interception/original-dst.js';
import { autoMtlsCluster, DOWNSTREAM_MTLS, endpoints } from '../../proxy/mtls-resources.js';
import { makeTestCA } from '../../proxy/test-ca.js';
import { forkNode, type ChildHandle } from './processes.js';
import { waitServing } from './probe.js';
import type { Target } from './load.js';
import type { SidecarProcessConfig } from './sidecar-process.js';
import type { RowSpec } from './proxy-rows.js';

export const SERVICE = { fqdn: 'bench-upstream.default.svc.cluster.local', port: 9080, clusterIP: '127.0.0.90' };
/** The Host header a mesh client sends (short name and port, as an app in the namespace would). */
export const SERVICE_HOST = 'bench-upstream:9080';
const SERVER_POD_IP = '127.0.0.91';

export interface RunningProxies {
  target: Target;
  proxies: ChildHandle[];
  stop(): Promise<void>;
}

function identity(podName: string, ip: string, app: string): ProxyIdentity {
  return { podName, namespace: 'default', instanceIp: ip, serviceAccount: app, workloadName: app, labels: { app, version: 'v1' }, domain: 'cluster.local' };
}

function spiffeOf(id: ProxyIdentity): string {
  return `spiffe://${id.domain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

async function startSidecar(name: string, ads: TestAdsServer, id: ProxyIdentity, originalDst: Record<string, SocketAddress>, tls?: SidecarProcessConfig['tls']): Promise<ChildHandle> {
  const file = fileURLToPath(new URL('./sidecar-process.js', import.meta.url));
  const cfg: SidecarProcessConfig = { pilotAddress: `127.0.0.1:${ads.port}`, identity: id, originalDst, tls };
  // The node flags the image catalog launches the proxy with, then BENCH_PROXY_NODE_ARGS,
  // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", to profile the sidecars.
  const extra = [...catalogNodeFlags(), ...(process.env.BENCH_PROXY_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  const { handle } = await forkNode(name, file, [JSON.stringify(cfg)], 10_000, extra);
  return handle;
}

/** Node's own flags (between `node` and the script) in install/images.yaml's proxyv2 command. */
function catalogNodeFlags(): string[] {
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../install/images.yaml');
  const catalog = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, { command?: string[] }>;
  const entry = Object.entries(catalog).find(([image]) => image.startsWith('trellis/proxyv2:'))?.[1];
  if (!entry?.command) throw new Error(`bench: ${file} has no trellis/proxyv2 command`);
  return entry.command.slice(1).filter((a) => a.startsWith('--'));
}

/**
 * The client side's resources: requests for SERVICE go to `endpointPort` on loopback; with
 * `serverSans` over automatic mTLS to an endpoint labelled tlsMode=istio.
 */
function outboundResources(outPort: number, endpointPort: number, serverSans?: string[]): Partial<Record<string, object[]>> {
  const cluster = outboundCluster(SERVICE.port, SERVICE.fqdn);
  const sni = `outbound_.${SERVICE.port}_._.${SERVICE.fqdn}`;
  return {
    [TYPE_URL.cluster]: [serverSans ? autoMtlsCluster(cluster, serverSans, { connectTimeout: { seconds: 1 } }, sni) : edsCluster(cluster), originalDstCluster('PassthroughCluster')],
    [TYPE_URL.clusterLoadAssignment]: [serverSans ? endpoints(cluster, endpointPort, true) : assignment(cluster, [['127.0.0.1', endpointPort]])],
    [TYPE_URL.listener]: [virtualOutbound('127.0.0.1', outPort), serviceListener(SERVICE.port)],
    [TYPE_URL.routeConfiguration]: [routeConfiguration(SERVICE.port, [virtualHost(SERVICE, { cluster })])],
  };
}

function inboundResources(inPort: number, appPort: number, mtls: boolean): Partial<Record<string, object[]>> {
  return {
    [TYPE_URL.cluster]: [staticCluster(`inbound|${appPort}||`, '127.0.0.1', appPort), originalDstCluster('InboundPassthroughCluster')],
    [TYPE_URL.listener]: [virtualInbound('127.0.0.1', inPort, [appPort], mtls ? DOWNSTREAM_MTLS : undefined)],
  };
}

async function running(target: Target, proxies: ChildHandle[], servers: TestAdsServer[]): Promise<RunningProxies> {
  const stop = async (): Promise<void> => {
    for (const p of proxies) await p.stop();
    for (const s of servers) await s.close();
  };
  try {
    await waitServing(proxies.map((p) => p.name).join(' -> '), target);
  } catch (err) {
    await stop();
    throw err;
  }
  return { target, proxies, stop };
}

/** One sidecar: the client's outbound path straight to the upstream. */
export async function startOneSidecar(upstreamPort: number): Promise<RunningProxies> {
  const ads = new TestAdsServer();
  await ads.listen();
  const outPort = await freePort();
  ads.setAll('1', outboundResources(outPort, upstreamPort));
  // The app connected to the service's cluster IP; iptables sent it to the capture port.
  const proxy = await startSidecar('trellis-sidecar', ads, identity('bench-client-1', '127.0.0.92', 'bench-client'), {
    [outPort]: { address: SERVICE.clusterIP, port: SERVICE.port },
  }).catch(async (err) => { await ads.close(); throw err; });
  return running({ origin: `http://127.0.0.1:${outPort}`, host: SERVICE_HOST }, [proxy], [ads]);
}

/** Two sidecars: client outbound -> server inbound -> upstream (the mesh's normal hop), plaintext or mutual TLS. */
export async function startSidecarChain(upstreamPort: number, opts: { mtls?: boolean } = {}): Promise<RunningProxies> {
  const serverId = identity('bench-upstream-1', SERVER_POD_IP, 'bench-upstream');
  const clientId = identity('bench-client-1', '127.0.0.92', 'bench-client');
  let serverTls: SidecarProcessConfig['tls'];
  let clientTls: SidecarProcessConfig['tls'];
  if (opts.mtls) {
    const ca = await makeTestCA();
    const issue = async (id: ProxyIdentity): Promise<SidecarProcessConfig['tls']> => {
      const spiffeId = spiffeOf(id);
      return { spiffeId, ...(await ca.issue([spiffeId])), rootPem: ca.rootPem };
    };
    [serverTls, clientTls] = [await issue(serverId), await issue(clientId)];
  }
  const serverAds = new TestAdsServer();
  const clientAds = new TestAdsServer();
  await serverAds.listen();
  await clientAds.listen();
  const inPort = await freePort();
  const outPort = await freePort();
  serverAds.setAll('1', inboundResources(inPort, upstreamPort, opts.mtls === true));
  // The server pod's endpoint is its inbound capture port here (iptables would redirect podIP:appPort there).
  clientAds.setAll('1', outboundResources(outPort, inPort, serverTls ? [serverTls.spiffeId] : undefined));
  const proxies: ChildHandle[] = [];
  try {
    proxies.push(await startSidecar('trellis-server-sidecar', serverAds, serverId, {
      [inPort]: { address: SERVER_POD_IP, port: upstreamPort },
    }, serverTls));
    proxies.push(await startSidecar('trellis-client-sidecar', clientAds, clientId, {
      [outPort]: { address: SERVICE.clusterIP, port: SERVICE.port },
    }, clientTls));
  } catch (err) {
    for (const p of proxies) await p.stop();
    await serverAds.close();
    await clientAds.close();
    throw err;
  }
  return running({ origin: `http://127.0.0.1:${outPort}`, host: SERVICE_HOST }, proxies, [clientAds, serverAds]);
}

/** The two-sidecar rows, plaintext and mTLS: bench:proxy and bench:security measure the same ones. */
export const TRELLIS_X2: RowSpec = {
  name: 'trellis x2', what: 'two Trellis sidecars chained (client outbound -> server inbound -> upstream), plaintext',
  start: (port) => startSidecarChain(port),
};

export const TRELLIS_X2_MTLS: RowSpec = {
  name: 'trellis x2 mTLS',
  what: 'two Trellis sidecars chained over automatic mTLS (client: tlsMode-istio transport socket match, ISTIO_MUTUAL; server: STRICT tls chain with XFCC; SDS default/ROOTCA)',
  start: (port) => startSidecarChain(port, { mtls: true }),
};
