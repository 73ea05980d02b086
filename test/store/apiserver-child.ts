// A child process running the API server on a FileStore in argv[2] (loopback, port 0), for
// tests that kill it with SIGKILL. Prints one JSON line {url, token, ca} when serving.
import * as path from 'node:path';
import { startApiServer } from '../../cluster/apiserver/index.js';
import { FileStore } from '../../cluster/store/index.js';

const dir = process.argv[2];
const compactEvery = Number(process.argv[3] ?? 2000);
const started = Date.now();
const store = new FileStore(path.join(dir, 'store'), { compactEvery });
const server = await startApiServer({ dataDir: dir, listen: [{ host: '127.0.0.1', port: 0 }], store });
process.stdout.write(JSON.stringify({ url: server.url, token: server.adminToken, ca: server.caCertPem, startMs: Date.now() - started }) + '\n');
