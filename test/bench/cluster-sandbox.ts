// Pod sandbox set-up cost: the kubelet's two `ip -batch` processes against the earlier one
// process per step (12 `ip` runs incl. the existence checks), alternated on the same bridge
// so machine load affects both alike. Reports medians and their ratio.
// Run (root, under the network lock): node dist/test/bench/cluster-sandbox.js
// Network objects: prefix tmn, pods 10.247.0.0/24; everything is removed at the end.
import { performance } from 'node:perf_hooks';
import { mustRun, runCommand } from '../../cluster/network/exec.js';
import { ensureNodeNetwork, teardownNodeNetwork } from '../../cluster/network/node-network.js';
import { ensureSandbox, removeSandbox } from '../../cluster/kubelet/sandbox.js';
import { sandboxNames } from '../../cluster/kubelet/names.js';

const PREFIX = 'tmn';
const ROUNDS = Number(process.env.ROUNDS ?? 15);

/** The set-up as it was: existence checks and one `ip` process per step. */
async function perStep(uid: string, podIP: string, bridge: string, gw: string): Promise<void> {
  const { netns, hostVeth } = sandboxNames(PREFIX, uid);
  await runCommand('ip', ['netns', 'list']);
  await runCommand('ip', ['link', 'show', 'dev', hostVeth]);
  await runCommand('ip', ['netns', 'list']);
  await mustRun('ip', ['netns', 'add', netns]);
  await mustRun('ip', ['link', 'add', 'name', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await mustRun('ip', ['link', 'set', 'dev', hostVeth, 'master', bridge]);
  await mustRun('ip', ['link', 'set', 'dev', hostVeth, 'type', 'bridge_slave', 'hairpin', 'on']);
  await mustRun('ip', ['link', 'set', 'dev', hostVeth, 'up']);
  await mustRun('ip', ['-n', netns, 'link', 'set', 'dev', 'lo', 'up']);
  await mustRun('ip', ['-n', netns, 'addr', 'add', `${podIP}/24`, 'dev', 'eth0']);
  await mustRun('ip', ['-n', netns, 'link', 'set', 'dev', 'eth0', 'up']);
  await mustRun('ip', ['-n', netns, 'route', 'replace', 'default', 'via', gw, 'dev', 'eth0']);
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function main(): Promise<void> {
  await teardownNodeNetwork(PREFIX);
  const net = await ensureNodeNetwork({ prefix: PREFIX, nodePodCIDR: '10.247.0.0/24', clusterPodCIDR: '10.247.0.0/16', serviceCIDR: '10.99.0.0/16' });
  const batch: number[] = [];
  const steps: number[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const ip = `10.247.0.${10 + i}`;
      let t = performance.now();
      await ensureSandbox({ prefix: PREFIX, podUID: `batch-${i}`, bridge: net.bridge, gatewayIP: net.gatewayIP, podIP: ip, prefixLength: 24 });
      batch.push(performance.now() - t);
      await removeSandbox(PREFIX, `batch-${i}`);
      t = performance.now();
      await perStep(`steps-${i}`, ip, net.bridge, net.gatewayIP);
      steps.push(performance.now() - t);
      await removeSandbox(PREFIX, `steps-${i}`);
    }
  } finally {
    await teardownNodeNetwork(PREFIX);
  }
  const b = median(batch); const s = median(steps);
  console.log(`sandbox set-up, median of ${ROUNDS}: ip -batch ${b.toFixed(1)} ms, one process per step ${s.toFixed(1)} ms, ratio ${(s / b).toFixed(2)}x`);
}

await main();
