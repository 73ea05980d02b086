// Responses the proxy generates itself carry the Envoy response flag and a reason. A gRPC
// request gets them as a gRPC error instead (trailers-only: HTTP 200 with grpc-status and
// grpc-message), mapped from the HTTP status as Envoy does, so gRPC clients see a status
// code rather than a protocol error.
import type http from 'node:http';
import type http2 from 'node:http2';

export const REASON_HEADER = 'x-trellis-reason';

/** Envoy's Grpc::Utility::httpToGrpcStatus. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400: return 13; // INTERNAL
    case 401: return 16; // UNAUTHENTICATED
    case 403: return 7; // PERMISSION_DENIED
    case 404: return 12; // UNIMPLEMENTED
    case 429: case 502: case 503: case 504: return 14; // UNAVAILABLE
    default: return 2; // UNKNOWN
  }
}

export function isGrpcRequest(req: http.IncomingMessage | undefined): boolean {
  const ct = req?.headers['content-type'];
  return typeof ct === 'string' && ct.startsWith('application/grpc');
}

/** grpc-message is percent-encoded (gRPC's HTTP/2 spec): anything outside printable ASCII and '%'. */
function grpcMessage(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => [...Buffer.from(c)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}

export function sendLocalReply(res: http.ServerResponse, status: number, flag: string, text: string): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  if (isGrpcRequest((res as { req?: http.IncomingMessage }).req)) {
    const headers = {
      'content-type': 'application/grpc',
      'grpc-status': String(httpToGrpcStatus(status)),
      'grpc-message': grpcMessage(text),
      [REASON_HEADER]: `${flag} ${text}`,
    };
    // Over HTTP/2 the status must ride the only HEADERS frame, with END_STREAM (trailers-only).
    const stream = (res as { stream?: http2.ServerHttp2Stream }).stream;
    if (stream && typeof stream.respond === 'function') {
      stream.respond({ ':status': 200, ...headers }, { endStream: true });
      return 0;
    }
    res.writeHead(200, headers);
    res.end();
    return 0;
  }
  const body = `${text}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    [REASON_HEADER]: `${flag} ${text}`,
  });
  res.end(body);
  return Buffer.byteLength(body);
}
