import http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../shared/logger.js';
import { clientIp } from '../shared/request.js';

// Hop-by-hop and forwarding headers are set by the proxy itself, never passed on from the client.
const DROPPED = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);

function refuse(socket: Socket, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** A response head as raw HTTP/1.1, with the upstream's header names as it sent them. */
function head(res: http.IncomingMessage): string {
  const lines = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}`];
  for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * Forwards WebSocket upgrades of `/ws` to the realtime gateways, so the pages reach live results
 * on their own origin (one published port under docker compose, one TLS certificate). A
 * connection goes to the next gateway in turn; the gateway sees the client address in
 * X-Forwarded-For (trust the API there with its TRUST_PROXY). Bytes are piped as they are: the
 * gateway alone speaks WebSocket.
 */
export function createRealtimeProxy({ upstreams, trust, log }: { upstreams: URL[]; trust: (addr: string, i: number) => boolean; log: Logger }) {
  const open = new Set<Socket>();
  let next = 0;

  function onUpgrade(req: http.IncomingMessage, socket: Socket, firstBytes: Buffer): void {
    socket.on('error', () => {});
    if ((req.url ?? '').split('?')[0] !== '/ws' || upstreams.length === 0) {
      refuse(socket, 404, 'Not Found');
      return;
    }
    const upstream = upstreams[next++ % upstreams.length];
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) if (!DROPPED.has(name) && value !== undefined) headers[name] = value;
    headers['x-forwarded-for'] = clientIp(req, trust);
    headers['x-forwarded-proto'] = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
    const proxied = http.request({
      protocol: 'http:',
      hostname: upstream.hostname,
      port: upstream.port || (upstream.protocol === 'https:' || upstream.protocol === 'wss:' ? 443 : 80),
      path: req.url,
      method: 'GET',
      headers,
    });
    proxied.on('upgrade', (res, upstreamSocket, upstreamHead) => {
      upstreamSocket.on('error', () => {});
      if (socket.destroyed) return upstreamSocket.destroy();
      socket.write(head(res));
      if (upstreamHead.length) socket.write(upstreamHead);
      if (firstBytes.length) upstreamSocket.write(firstBytes);
      open.add(socket);
      const end = () => {
        open.delete(socket);
        socket.destroy();
        upstreamSocket.destroy();
      };
      socket.on('close', end);
      upstreamSocket.on('close', end);
      socket.pipe(upstreamSocket).pipe(socket);
    });
    // The gateway refused the upgrade itself (403 origin, 429 too many, 503 closing): pass it on.
    proxied.on('response', (res) => {
      socket.write(head(res));
      res.pipe(socket);
    });
    proxied.on('error', (err) => {
      log.warn({ err: err.message, upstream: upstream.host }, 'realtime gateway unreachable for a /ws upgrade');
      if (!socket.destroyed) refuse(socket, 502, 'Bad Gateway');
    });
    socket.on('close', () => proxied.destroy());
    proxied.end();
  }

  return {
    onUpgrade,
    /** Ends every forwarded connection (the API is shutting down; clients reconnect elsewhere). */
    closeAll(): void {
      for (const s of open) s.destroy();
      open.clear();
    },
  };
}
