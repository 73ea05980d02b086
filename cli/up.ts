// `trellis up`: an embedded cluster, the mesh installed into it from install/, and the
// traffic-splitting sample, in one foreground process; Ctrl-C tears everything down.
import path from 'node:path';
import { KubeClient, R, type Pod } from '../api/kube/index.js';
import { startEmbeddedCluster, type EmbeddedCluster } from '../cluster/embedded.js';
import { boolFlag, durationFlag, numberFlag, stringFlag, type ParsedArgs } from './args.js';
import { deploySample, ingressGatewayUrl, installMesh } from './mesh.js';
import { trellisHome } from './paths.js';
import { DEFAULT_EVENT_TTL_SECONDS } from '../cluster/apiserver/event-ttl.js';

export async function up(args: ParsedArgs): Promise<void> {
  const home = trellisHome();
  const dataDir = path.resolve(stringFlag(args, 'data-dir', '.trellis'));
  const log = (line: string): void => { console.log(`[trellis] ${line}`); };
  let cluster: EmbeddedCluster | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<never> => {
    if (stopping) process.exit(code);
    stopping = true;
    log('stopping: every pod, then the network (namespaces, links, routes, iptables chains)');
    try { await cluster?.stop(); } catch (e) { console.error(`[trellis] teardown failed: ${(e as Error).message}`); code = code || 1; }
    log('stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    cluster = await startEmbeddedCluster({
      name: stringFlag(args, 'name', 'trellis'),
      dataDir,
      apiPort: numberFlag(args, 'port', 6443),
      podCIDR: stringFlag(args, 'pod-cidr', '10.244.0.0/16'),
      serviceCIDR: stringFlag(args, 'service-cidr', '10.96.0.0/16'),
      nodes: numberFlag(args, 'nodes', 1),
      eventTTLSeconds: durationFlag(args, 'event-ttl', DEFAULT_EVENT_TTL_SECONDS),
      imageCatalogs: [path.join(home, 'install', 'images.yaml'), path.join(home, 'samples', 'images.yaml')],
      log,
    });
    log(`API server ${cluster.apiURL}; kubeconfig ${cluster.kubeconfigPath}`);
    const client = KubeClient.fromKubeconfig(cluster.kubeconfigPath, 'trellis-cli');
    log('installing the mesh from install/');
    await installMesh(client, home, log);
    log('mesh ready: pilot (istiod), the sidecar injector and the ingress gateway are running in trellis-system');
    log(`ingress gateway: ${await ingressGatewayUrl(client)}`);
    if (!boolFlag(args, 'no-sample')) {
      log('deploying the traffic-split sample (samples/split) into namespace demo');
      await deploySample(client, home, log);
      await printSummary(client, cluster);
    }
    log('READY (Ctrl-C to stop and clean up)');
  } catch (e) {
    console.error(`[trellis] up failed: ${(e as Error).message}`);
    await stop(1);
  }
}

async function printSummary(client: KubeClient, cluster: EmbeddedCluster): Promise<void> {
  const pods = await client.list<Pod>(R.pods, {});
  console.log('\nRunning pods:');
  for (const p of pods.items) {
    const containers = [...(p.spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always'), ...p.spec.containers].map((c) => c.name);
    console.log(`  ${`${p.metadata.namespace}/${p.metadata.name}`.padEnd(48)} ${(p.status?.phase ?? '').padEnd(8)} ${(p.status?.podIP ?? '').padEnd(14)} [${containers.join(', ')}]`);
  }
  const clientPod = pods.items.find((p) => p.metadata.namespace === 'demo' && p.metadata.labels?.app === 'client');
  const kc = cluster.kubeconfigPath;
  const ingress = await ingressGatewayUrl(client, 10_000).catch(() => '<ingress gateway not ready>');
  console.log(`
How to look at it:
  export KUBECONFIG=${kc}
  kubectl get pods -A -o wide
  kubectl -n demo get virtualservices,destinationrules
  # 1000 requests from the client pod to http://web (through both sidecars), counted by version:
  curl 'http://${clientPod?.status?.podIP ?? '<client-pod-ip>'}:8080/fanout?url=http://web/&n=1000'
  # from this host through the ingress gateway (Gateway + VirtualService in samples/split/gateway.yaml):
  curl ${ingress}
  # shift the split to 50/50 while everything keeps running:
  kubectl apply -f samples/split/virtualservice-50-50.yaml
  # the client's sidecar counters (Prometheus):
  curl http://${clientPod?.status?.podIP ?? '<client-pod-ip>'}:15090/stats/prometheus | grep istio_requests_total
`);
}
