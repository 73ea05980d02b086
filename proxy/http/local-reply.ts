// Responses the proxy generates itself carry the Envoy response flag and a reason.
import type http from 'node:http';

export const REASON_HEADER = 'x-trellis-reason';

export function sendLocalReply(res: http.ServerResponse, status: number, flag: string, text: string): number {
  if (res.headersSent) {
    res.destroy();
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
