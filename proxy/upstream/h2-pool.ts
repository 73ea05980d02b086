// HTTP/2 towards one endpoint over cleartext with prior knowledge (h2c), as Envoy does for
// clusters whose HttpProtocolOptions ask for http2: one multiplexed session per endpoint,
// re-established when the peer closes it or sends GOAWAY. With a dialer the session runs over
// the socket it hands back (upstream TLS: h2 inside the tunnel, prior knowledge as with ALPN istio).
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { UpstreamPool, UpstreamRequest, UpstreamResponse } from './upstream-pool.js';
import type { ConnectionOptions } from '../xds/resources/connection-options.js';

// Connection-specific headers are forbidden in HTTP/2 (RFC 9113 8.2.2); `te` may only be "trailers".
const H2_FORBIDDEN: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

function connectError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Opens a connected (and, for TLS, handshaken and verified) socket towards the endpoint. */
export type Dialer = () => Promise<{ socket: Duplex; peerUri?: string }>;

export class Http2Pool implements UpstreamPool {
  readonly protocol = 'http2';
  private session: http2.ClientHttp2Session | undefined;
  private closed = false;
  /** Streams opened on the current session (max_requests_per_connection). */
  private streams = 0;
  /** A dial in progress: concurrent requests share the one session it yields. */
  private dialing: Promise<http2.ClientHttp2Session> | undefined;
  /** The verified URI SAN of each TLS session's server. */
  private readonly peers = new WeakMap<http2.ClientHttp2Session, string>();

  constructor(private readonly host: string, private readonly port: number, private readonly connectTimeoutMs: number, private readonly conn?: ConnectionOptions, private readonly dial?: Dialer) {}

  private acquire(): http2.ClientHttp2Session | Promise<http2.ClientHttp2Session> {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    // Own socket so Nagle is off: small gRPC frames must not wait for delayed ACKs.
    if (!this.dial) return this.open(net.connect({ host: this.host, port: this.port, noDelay: true }));
    const dial = this.dial;
    this.dialing ??= dial().then(({ socket, peerUri }) => {
      this.dialing = undefined;
      if (this.closed) {
        socket.destroy();
        throw connectError('pool closed', 'ECONNREFUSED');
      }
      const session = this.open(socket);
      if (peerUri) this.peers.set(session, peerUri);
      return session;
    }, (err: Error) => {
      this.dialing = undefined;
      throw err;
    });
    return this.dialing;
  }

  private open(socket: Duplex): http2.ClientHttp2Session {
    const authority = `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
    const session = http2.connect(authority, { createConnection: () => socket });
    this.session = session;
    const timer = setTimeout(() => {
      session.destroy(connectError(`connect timeout to ${this.host}:${this.port}`, 'UND_ERR_CONNECT_TIMEOUT'));
    }, this.connectTimeoutMs);
    session.once('connect', () => clearTimeout(timer));
    const forget = (): void => {
      clearTimeout(timer);
      if (this.session === session) this.session = undefined;
    };
    // Errors reach the streams of the session; here they only retire the session.
    session.on('error', forget);
    session.on('close', forget);
    session.on('goaway', forget);
    this.streams = 0;
    // idle_timeout: a session without streams for that long is closed.
    if (this.conn) session.setTimeout(this.conn.idleTimeoutMs, () => { forget(); session.close(); });
    // An idle session must not keep the process alive.
    session.unref();
    return session;
  }

  async send(req: UpstreamRequest): Promise<UpstreamResponse> {
    if (this.closed) throw connectError('pool closed', 'ECONNREFUSED');
    const session = await this.acquire();
    // The last stream a session may carry retires it: later requests get a new one.
    if (this.conn?.maxRequestsPerConnection && ++this.streams >= this.conn.maxRequestsPerConnection) {
      this.session = undefined;
      setImmediate(() => session.close());
    }
    // Over a TLS tunnel (a dialer) the request travels as https, as Envoy sets :scheme from the upstream transport.
    const headers: http2.OutgoingHttpHeaders = { ':method': req.method, ':path': req.path, ':scheme': this.dial ? 'https' : 'http' };
    for (let i = 0; i < req.headers.length; i += 2) {
      const name = req.headers[i].toLowerCase();
      const value = req.headers[i + 1];
      if (name === 'host') { headers[':authority'] = value; continue; }
      if (H2_FORBIDDEN.has(name) || name.startsWith(':')) continue;
      if (name === 'te' && value.toLowerCase() !== 'trailers') continue;
      const prev = headers[name];
      headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
    }
    return new Promise<UpstreamResponse>((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(headers, { endStream: req.body === undefined });
      } catch (err) {
        reject(err);
        return;
      }
      const trailers: Record<string, string | string[] | undefined> = {};
      let responded = false;
      const onAbort = (): void => { stream.close(http2.constants.NGHTTP2_CANCEL); };
      req.signal.once('abort', onAbort);
      stream.on('trailers', (t: http2.IncomingHttpHeaders) => { Object.assign(trailers, t); });
      stream.once('response', (h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader) => {
        responded = true;
        const out: Record<string, string | string[] | undefined> = {};
        for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) out[k] = v;
        resolve({
          statusCode: Number(h[':status'] ?? 502), headers: out, body: stream, trailers, peerPrincipal: this.peers.get(session),
          discard: () => new Promise((done) => { stream.resume(); stream.once('close', () => done()); }),
        });
      });
      stream.once('close', () => {
        req.signal.off('abort', onAbort);
        if (!responded) {
          const code = stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? 'REFUSED_STREAM' : `RST_STREAM_${stream.rstCode}`;
          reject(connectError(`stream closed before response (${code})`, code));
        }
      });
      stream.on('error', (err) => { if (!responded) reject(err); });
      if (req.body !== undefined) {
        if (Buffer.isBuffer(req.body)) stream.end(req.body);
        else req.body.pipe(stream);
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    if (s && !s.closed) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async destroy(): Promise<void> {
    this.closed = true;
    this.session?.destroy();
    this.session = undefined;
  }
}
