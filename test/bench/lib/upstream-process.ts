// The benchmark's upstream: a small Node HTTP/1.1 server on loopback answering every request
// with the same 1 KB body over keep-alive. Runs as its own process (forked by the bench) and
// reports its port over IPC.
import http from 'node:http';
import type net from 'node:net';

const BODY = Buffer.alloc(1024, 'x');

const server = http.createServer((req, res) => {
  // Drain any request body, then answer; the body is preallocated so each reply costs the same.
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  });
});
// Longer than any proxy's upstream idle timeout, so the server never closes a pooled connection first.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as net.AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
