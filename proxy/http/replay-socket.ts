// A Duplex over an accepted socket that first replays bytes already read from it. Node's
// HTTP/2 server reads a net.Socket's handle directly and would miss the bytes the codec
// detection peeked at; handed this stream instead, it sees the whole connection.
import { Duplex } from 'node:stream';
import type net from 'node:net';

export function replaySocket(socket: net.Socket, first: Buffer): Duplex {
  const d = new Duplex({
    read() { socket.resume(); },
    write(chunk: Buffer, _enc, cb) { socket.write(chunk, cb); },
    final(cb) { socket.end(); cb(); },
    destroy(err, cb) { socket.destroy(); cb(err); },
  });
  d.push(first);
  socket.on('data', (c: Buffer) => { if (!d.push(c)) socket.pause(); });
  socket.on('end', () => d.push(null));
  socket.on('close', () => d.destroy());
  socket.on('error', (err) => d.destroy(err));
  return d;
}
