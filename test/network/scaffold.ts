// Test scaffolding for the root-namespace network tests: plays the kubelet's part
// (netns + veth on the bridge) and runs programs inside namespaces, tracking their PIDs.
import { spawn, type ChildProcess } from 'node:child_process';
import { runCommand, mustRun } from '../../cluster/network/exec.js';

export const PREFIX = 'tnet';
export const NODE_CIDR = '10.250.0.0/24';
export const CLUSTER_CIDR = '10.250.0.0/16';
export const SERVICE_CIDR = '10.251.0.0/16';
export const GATEWAY = '10.250.0.1';

/** Why the root network tests cannot run here, or undefined when they can. */
export async function networkSkipReason(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (creates bridges, namespaces and iptables rules)';
  for (const bin of ['ip', 'iptables', 'iptables-restore', 'iptables-save']) {
    const r = await runCommand('sh', ['-c', `command -v ${bin}`]);
    if (r.code !== 0) return `needs the ${bin} command`;
  }
  return undefined;
}

/**
 * A pod-like namespace `tnet-<name>` with eth0 on the bridge. Routes only the test's own
 * CIDRs via the gateway (no default route), so nothing can leave for other addresses.
 */
export async function addPodNamespace(name: string, ip: string, bridge: string): Promise<string> {
  const ns = `${PREFIX}-${name}`;
  const hostEnd = `${PREFIX}-${name}h`; // carries "<prefix>-", so teardown finds it
  const podEnd = `${PREFIX}-${name}p`;
  await mustRun('ip', ['netns', 'add', ns]);
  await mustRun('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', podEnd]);
  await mustRun('ip', ['link', 'set', podEnd, 'netns', ns]);
  await mustRun('ip', ['-n', ns, 'link', 'set', podEnd, 'name', 'eth0']);
  await mustRun('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await mustRun('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await mustRun('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  await mustRun('ip', ['-n', ns, 'route', 'add', CLUSTER_CIDR, 'via', GATEWAY]);
  await mustRun('ip', ['-n', ns, 'route', 'add', SERVICE_CIDR, 'via', GATEWAY]);
  await mustRun('ip', ['link', 'set', hostEnd, 'master', bridge]);
  // The kubelet's job: with br_netfilter, a pod reaching itself through its service IP is
  // DNAT'd on the bridge path and must leave through the port it came in on.
  await mustRun('ip', ['link', 'set', 'dev', hostEnd, 'type', 'bridge_slave', 'hairpin', 'on']);
  await mustRun('ip', ['link', 'set', hostEnd, 'up']);
  return ns;
}

export class Processes {
  private readonly children: ChildProcess[] = [];

  /** Starts `node -e script` inside a namespace; resolves once it prints `ready`. */
  async startNode(ns: string, script: string): Promise<ChildProcess> {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => reject(new Error(`process in ${ns} not ready after 10s: ${err}`)), 10_000);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`process in ${ns} exited with ${code}: ${err}`));
      });
    });
    return child;
  }

  /** Kills only the PIDs this object started. */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return resolve();
            c.once('exit', () => resolve());
            process.kill(c.pid, 'SIGKILL');
          }),
      ),
    );
    this.children.length = 0;
  }
}

/** Runs `node -e script` in a namespace to completion; returns stdout. */
export async function runNodeIn(ns: string, script: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`node in ${ns} timed out after ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`node in ${ns} exited with ${code}: ${err}`));
    });
  });
}

/** A tiny HTTP server for a namespace: answers `<tag> <clientAddress>` on 0.0.0.0:<port>. */
export function httpServerScript(tag: string, port: number): string {
  return `require('http').createServer((q,s)=>s.end(${JSON.stringify(tag)}+' '+q.socket.remoteAddress)).listen(${port},'0.0.0.0',()=>console.log('ready'))`;
}

/** fetch from inside a namespace; prints the body, or `ERR <code> <ms>` on failure. */
export function fetchScript(url: string): string {
  return `const t=Date.now();fetch(${JSON.stringify(url)},{signal:AbortSignal.timeout(5000)}).then(r=>r.text()).then(b=>console.log(b),e=>console.log('ERR '+(e.cause?.code??e.name)+' '+(Date.now()-t)))`;
}
