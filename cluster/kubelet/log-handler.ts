// Serves container logs for GET pods/{name}/log (`kubectl logs`): container, previous,
// tailLines and follow. In Kubernetes the API server proxies this to the kubelet; here
// the kubelet hands the API server a handler over its log files.
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Kubelet } from './kubelet.js';

const FOLLOW_POLL_MS = 250;

/** `kubelets` returns the node agent, or every node's agent when the cluster has several. */
export function podLogHandler(kubelets: () => Kubelet | Kubelet[] | undefined) {
  return async (req: IncomingMessage, res: ServerResponse, pod: { namespace: string; name: string; query: URLSearchParams }): Promise<void> => {
    const q = pod.query;
    const found = kubelets();
    let file: string | undefined;
    for (const k of Array.isArray(found) ? found : found ? [found] : []) {
      file = k.logPath(pod.namespace, pod.name, q.get('container') ?? undefined, q.get('previous') === 'true');
      if (file) break;
    }
    if (!file || !fs.existsSync(file)) {
      const what = `container ${q.get('container') ?? '(default)'} in pod ${pod.namespace}/${pod.name}`;
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'BadRequest', code: 400, message: `no logs for ${what}: it has not started on this node` }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    let text = fs.readFileSync(file, 'utf8');
    const tail = q.get('tailLines');
    if (tail !== null) {
      const lines = text.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      text = lines.slice(Math.max(0, lines.length - Number(tail))).map((l) => `${l}\n`).join('');
    }
    res.write(text);
    if (q.get('follow') !== 'true') { res.end(); return; }
    // Follow: stream what is appended until the client goes away.
    let offset = fs.statSync(file).size;
    const timer = setInterval(() => {
      let size: number;
      try { size = fs.statSync(file).size; } catch { clearInterval(timer); res.end(); return; }
      if (size <= offset) return;
      const fd = fs.openSync(file, 'r');
      const buf = Buffer.alloc(size - offset);
      fs.readSync(fd, buf, 0, buf.length, offset);
      fs.closeSync(fd);
      offset = size;
      res.write(buf);
    }, FOLLOW_POLL_MS);
    req.on('close', () => clearInterval(timer));
  };
}
