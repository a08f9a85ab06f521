// The gateway's node:http server: listening on the instance's port (taken:
// PortInUseError) and closing it, with a short grace for answers just written
// before the remaining connections are cut. It owns the port and its sockets.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PortInUseError } from '../../core/errors.js';

export interface HttpServerOptions {
  port: number;
  host: string;
  onRequest(req: IncomingMessage, res: ServerResponse): void;
}

export interface HttpServer {
  /** The port listened on (the one asked for, or the one given for port 0). */
  readonly port: number;
  /** Stops accepting; resolves once every connection has ended. */
  close(): Promise<void>;
}

/** How long answers just written get to leave before sockets are cut. */
const CLOSE_GRACE_MS = 1_000;

/** Listens on the port; rejects with PortInUseError when it is taken. */
export async function listenHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { port, host } = options;
  const server = createServer({ noDelay: true, keepAliveTimeout: 65_000 }, options.onRequest);
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      if (error.code === 'EADDRINUSE')
        reject(new PortInUseError(`port ${port} on ${host} is already in use`, { port, host }));
      else reject(error);
    };
    server.once('error', onError);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
