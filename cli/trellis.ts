#!/usr/bin/env node
// The trellis command.
import { parseArgs } from './args.js';
import { down } from './down.js';
import { proxyStatus } from './proxy-status.js';
import { up } from './up.js';

const USAGE = `usage: trellis <command> [flags]

commands:
  up      start an embedded cluster, install the mesh and the traffic-split sample
          --data-dir DIR (.trellis)  --name PREFIX (trellis)  --port N (6443)
          --pod-cidr CIDR (10.244.0.0/16)  --service-cidr CIDR (10.96.0.0/16)  --no-sample
  down    remove what a crashed 'up' left behind: --purge [--name PREFIX]
  proxy-status  each proxy's xDS sync state (SYNCED, STALE, NACKED) as pilot sees it
          --kubeconfig FILE ($KUBECONFIG or .trellis/kubeconfig)
`;

const args = parseArgs(process.argv.slice(2));
try {
  switch (args.command) {
    case 'up': await up(args); break;
    case 'down': await down(args); break;
    case 'proxy-status': await proxyStatus(args); break;
    case 'help': case '--help': console.log(USAGE); break;
    default: console.error(`trellis: unknown command ${args.command}\n\n${USAGE}`); process.exit(2);
  }
} catch (e) {
  console.error(`trellis: ${(e as Error).message}`);
  process.exit(1);
}
