// The proxy process's lifecycle through the real CLI: SIGTERM drains inbound (no new
// connections) while outbound keeps accepting, then exits 0 after the drain duration;
// POST /quitquitquit exits 0 promptly (what a Job's main container calls when done).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TYPE_URL } from '../../api/xds/protos.js';
import { TestAdsServer } from './ads-server.js';
import { freePort, originalDstCluster, virtualInbound, virtualOutbound, waitFor } from './fixtures.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proxy/cli.js');

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
}

describe('proxy process lifecycle (CLI)', () => {
  const ads = new TestAdsServer();
  const children: ChildProcess[] = [];

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
    await ads.close();
  });

  async function startProxy(version: string): Promise<{ child: ChildProcess; admin: number; inPort: number; outPort: number }> {
    const [admin, prom, ready, inPort, outPort, appPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    if (!ads.port) await ads.listen();
    ads.setAll(version, {
      [TYPE_URL.cluster]: [originalDstCluster('PassthroughCluster'), originalDstCluster('InboundPassthroughCluster')],
      [TYPE_URL.listener]: [virtualOutbound('127.0.0.1', outPort), virtualInbound('127.0.0.1', inPort, [appPort])],
    });
    const child = spawn(process.execPath, [CLI, 'proxy', 'sidecar'], {
      env: {
        ...process.env, PILOT_ADDRESS: `127.0.0.1:${ads.port}`, POD_NAME: 'job-1', POD_NAMESPACE: 'default', INSTANCE_IP: '127.0.0.93',
        PROXY_ADMIN_PORT: String(admin), PROXY_PROMETHEUS_PORT: String(prom), PROXY_READINESS_PORT: String(ready),
        TERMINATION_DRAIN_DURATION_SECONDS: '1',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    child.stderr?.resume();
    await waitFor('listeners bound', async () => (await canConnect(inPort)) && (await canConnect(outPort)), 15_000);
    return { child, admin, inPort, outPort };
  }

  it('on SIGTERM stops accepting inbound, keeps outbound, then exits 0', async () => {
    const { child, inPort, outPort, admin } = await startProxy('1');
    assert.equal((await fetch(`http://127.0.0.1:${admin}/healthz`)).status, 200);
    const started = Date.now();
    child.kill('SIGTERM');
    await waitFor('inbound closed', async () => !(await canConnect(inPort)), 3000);
    assert.ok(await canConnect(outPort), 'outbound still accepts while draining');
    const code = await exited(child);
    assert.equal(code, 0);
    assert.ok(Date.now() - started >= 900, 'waited for the drain duration');
  });

  it('exits 0 promptly on POST /quitquitquit', async () => {
    const { child, admin } = await startProxy('2');
    const started = Date.now();
    assert.equal((await fetch(`http://127.0.0.1:${admin}/quitquitquit`, { method: 'POST' })).status, 200);
    assert.equal(await exited(child), 0);
    assert.ok(Date.now() - started < 3000, 'prompt');
  });
});
