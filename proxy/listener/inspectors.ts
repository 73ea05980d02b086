// Envoy's tls_inspector and http_inspector listener filters: peek at the first bytes of a
// connection (nothing is consumed: the bytes are put back before the filter chain runs) to
// learn the transport protocol, SNI and ALPN from a ClientHello, or the HTTP version from
// a request line / the HTTP/2 preface. Bounded by the listener's listenerFiltersTimeout.
import type net from 'node:net';

export interface Detected {
  transportProtocol: 'tls' | 'raw_buffer';
  serverName?: string;
  applicationProtocols: string[];
}

/** ClientHellos larger than this are not TLS we can parse (Envoy's inspector limit is 64 KiB). */
const MAX_PEEK = 64 * 1024;
const MAX_REQUEST_LINE = 8 * 1024;
const H2_PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

type Parse<T> = { done: true; value: T } | { done: false };

/**
 * Parses a ClientHello from TLS records. `done: false` asks for more bytes; a value of
 * undefined means "not TLS" (first byte is not a handshake record).
 */
export function parseClientHello(buf: Buffer): Parse<{ serverName?: string; alpn: string[] } | undefined> {
  if (buf.length === 0) return { done: false };
  if (buf[0] !== 0x16) return { done: true, value: undefined };
  if (buf.length >= 2 && buf[1] !== 0x03) return { done: true, value: undefined };
  // Reassemble the handshake message from consecutive handshake records.
  const parts: Buffer[] = [];
  let off = 0;
  let have = 0;
  let need = -1;
  while (need < 0 || have < need) {
    if (buf.length < off + 5) return { done: false };
    if (buf[off] !== 0x16) return { done: true, value: { alpn: [] } };
    const len = buf.readUInt16BE(off + 3);
    if (buf.length < off + 5 + len) return { done: false };
    parts.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need < 0 && have >= 4) {
      const hs = Buffer.concat(parts);
      if (hs[0] !== 0x01) return { done: true, value: { alpn: [] } };
      need = 4 + hs.readUIntBE(1, 3);
    }
  }
  const msg = Buffer.concat(parts).subarray(4, need);
  try {
    return { done: true, value: helloExtensions(msg) };
  } catch {
    return { done: true, value: { alpn: [] } };
  }
}

function helloExtensions(m: Buffer): { serverName?: string; alpn: string[] } {
  let p = 2 + 32; // client_version, random
  p += 1 + m[p]; // session_id
  p += 2 + m.readUInt16BE(p); // cipher_suites
  p += 1 + m[p]; // compression_methods
  const out: { serverName?: string; alpn: string[] } = { alpn: [] };
  if (p + 2 > m.length) return out;
  const end = p + 2 + m.readUInt16BE(p);
  p += 2;
  while (p + 4 <= end) {
    const type = m.readUInt16BE(p);
    const len = m.readUInt16BE(p + 2);
    const data = m.subarray(p + 4, p + 4 + len);
    p += 4 + len;
    if (type === 0 && data.length >= 5 && data[2] === 0) {
      out.serverName = data.subarray(5, 5 + data.readUInt16BE(3)).toString('latin1').toLowerCase();
    } else if (type === 16 && data.length >= 2) {
      let q = 2;
      const listEnd = Math.min(data.length, 2 + data.readUInt16BE(0));
      while (q < listEnd) {
        const n = data[q];
        out.alpn.push(data.subarray(q + 1, q + 1 + n).toString('latin1'));
        q += 1 + n;
      }
    }
  }
  return out;
}

const METHOD = /^[A-Z]{1,20}$/;

/** http_inspector: 'h2c', 'http/1.1', 'http/1.0', or undefined when the bytes are not HTTP. */
export function parseHttpStart(buf: Buffer): Parse<string | undefined> {
  const head = buf.subarray(0, Math.min(buf.length, H2_PREFACE.length)).toString('latin1');
  if (H2_PREFACE.startsWith(head)) return head.length === H2_PREFACE.length ? { done: true, value: 'h2c' } : { done: false };
  const text = buf.subarray(0, Math.min(buf.length, MAX_REQUEST_LINE)).toString('latin1');
  const space = text.indexOf(' ');
  const method = space < 0 ? text : text.slice(0, space);
  if (method.length > 0 && !METHOD.test(method)) return { done: true, value: undefined };
  const eol = text.indexOf('\r\n');
  if (eol < 0) return buf.length >= MAX_REQUEST_LINE ? { done: true, value: undefined } : { done: false };
  const m = /^[A-Z]+ \S+ HTTP\/1\.([01])$/.exec(text.slice(0, eol));
  if (!m) return { done: true, value: undefined };
  return { done: true, value: m[1] === '1' ? 'http/1.1' : 'http/1.0' };
}

export interface InspectOptions {
  tls: boolean;
  http: boolean;
  timeoutMs: number;
  continueOnTimeout: boolean;
}

/**
 * Runs the inspectors on a fresh socket. Resolves with what was learnt (the peeked bytes are
 * back in the socket's buffer, the socket paused), or undefined when the connection ended,
 * failed or timed out without continueOnTimeout: the caller closes it.
 */
export function inspect(socket: net.Socket, opts: InspectOptions): Promise<Detected | undefined> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (d: Detected | undefined): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      if (buf.length > 0 && d) socket.unshift(buf);
      resolve(d);
    };
    const evaluate = (): void => {
      if (opts.tls) {
        const hello = parseClientHello(buf);
        if (!hello.done) {
          if (buf.length < MAX_PEEK) return;
          return finish({ transportProtocol: 'raw_buffer', applicationProtocols: [] });
        }
        if (hello.value) return finish({ transportProtocol: 'tls', serverName: hello.value.serverName, applicationProtocols: hello.value.alpn });
      }
      if (opts.http) {
        const h = parseHttpStart(buf);
        if (!h.done) return;
        return finish({ transportProtocol: 'raw_buffer', applicationProtocols: h.value ? [h.value] : [] });
      }
      finish({ transportProtocol: 'raw_buffer', applicationProtocols: [] });
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      evaluate();
    };
    // The peer closed before the inspectors could decide: Envoy closes the connection too
    // (and a stream that ended cannot take the peeked bytes back).
    const onEnd = (): void => finish(undefined);
    if (opts.timeoutMs > 0) {
      timer = setTimeout(() => {
        if (!opts.continueOnTimeout) return finish(undefined);
        // Envoy continues with what it has: nothing detected means raw_buffer, no ALPN.
        finish({ transportProtocol: 'raw_buffer', applicationProtocols: [] });
      }, opts.timeoutMs);
    }
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}
