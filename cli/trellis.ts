#!/usr/bin/env node
// The trellis command.
import { parseArgs } from './args.js';
import { down } from './down.js';
import { proxyStatus } from './proxy-status.js';
import { proxyConfig } from './proxy-config.js';
import { analyzeCommand } from './analyze.js';
import { up } from './up.js';

const USAGE = `usage: trellis <command> [flags]

commands:
  up      start an embedded cluster, install the mesh and the traffic-split sample
          --data-dir DIR (.trellis)  --name PREFIX (trellis)  --port N (6443)
          --pod-cidr CIDR (10.244.0.0/16)  --service-cidr CIDR (10.96.0.0/16)  --no-sample
          --nodes N (1): N nodes (node-0..N-1, at most 10), each a kubelet with its own bridge and /24
          --event-ttl DURATION (1h): how long an Event lives after its last write (kube-apiserver's --event-ttl)
  down    remove what a crashed 'up' left behind: --purge [--name PREFIX]
  proxy-status  each proxy's xDS sync state (SYNCED, STALE, NACKED) as pilot sees it
          --kubeconfig FILE ($KUBECONFIG or .trellis/kubeconfig)
  proxy-config listeners|routes|clusters|endpoints <pod>[.<namespace>]
          what pilot last sent that pod's proxy, as a table or -o json
          -n NAMESPACE  --pilot URL (pilot's debug address; default: found like proxy-status)
          filters: --fqdn --port --subset --direction (clusters), --port (listeners),
          --name (routes), --cluster (endpoints)
  analyze  cross-reference problems (missing host or subset, weight on a subset without
          ready endpoints), Istio's codes; exit 79 when an Error is found
          -n NAMESPACE (default)  -A (all namespaces)  --kubeconfig FILE
`;

const args = parseArgs(process.argv.slice(2));
try {
  switch (args.command) {
    case 'up': await up(args); break;
    case 'down': await down(args); break;
    case 'proxy-status': await proxyStatus(args); break;
    case 'proxy-config': await proxyConfig(args); break;
    case 'analyze': process.exitCode = await analyzeCommand(args); break;
    case 'help': case '--help': console.log(USAGE); break;
    default: console.error(`trellis: unknown command ${args.command}\n\n${USAGE}`); process.exit(2);
  }
} catch (e) {
  console.error(`trellis: ${(e as Error).message}`);
  process.exit(1);
}
