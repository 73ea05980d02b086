// Benchmark child: one API server on a chosen store backend, in its own process so the
// load generator does not share its event loop. Talks to the parent over IPC:
// sends { url, caCertPem, adminToken } when ready, exits after a 'stop' message.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startApiServer } from '../../cluster/apiserver/index.js';
import { EtcdStore, FileStore, MemoryStore, type Store } from '../../cluster/store/index.js';

export type Backend = 'file' | 'memory' | 'etcd';

export interface ServerReady { url: string; caCertPem: string; adminToken: string }

async function main(): Promise<void> {
  const backend = process.argv[2] as Backend;
  const endpoints = (process.argv[3] ?? '').split(',').filter(Boolean);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `trellis-bench-api-${backend}-`));
  let store: Store;
  if (backend === 'file') store = new FileStore(path.join(dir, 'store'));
  else if (backend === 'memory') store = new MemoryStore();
  else if (backend === 'etcd') store = new EtcdStore({ endpoints, prefix: `/bench-api-${process.pid}` });
  else throw new Error(`apiserver-server: unknown backend ${String(backend)} (argv[2]: file|memory|etcd)`);
  const server = await startApiServer({ dataDir: dir, listen: [{ host: '127.0.0.1', port: 0 }], store });
  const ready: ServerReady = { url: server.url, caCertPem: server.caCertPem, adminToken: server.adminToken };
  process.send?.(ready);
  process.on('message', (m) => {
    if (m !== 'stop') return;
    void (async () => {
      await server.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    })();
  });
  // The parent died without saying stop: do not linger.
  process.on('disconnect', () => { fs.rmSync(dir, { recursive: true, force: true }); process.exit(0); });
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
