// Binding the server's port, with a failure said in the operator's terms: which flag, and what to do about it.
import type { FastifyInstance } from 'fastify';

/** The port could not be bound; `serve` prints the message and exits 1 before loading any weights. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

/** `http://host:port`, with IPv6 literals in brackets. */
export function urlOf(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function explain(err: NodeJS.ErrnoException, host: string, port: number): string {
  const where = `${host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: port ${port} is already in use (EADDRINUSE); stop what holds it or pick another --port`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: --host ${host} is not an address of this machine (EADDRNOTAVAIL); try 127.0.0.1 or 0.0.0.0`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return `cannot listen on ${where}: --host ${host} is neither an IP address nor a name this machine resolves (${err.code})`;
    case 'EACCES':
      return `cannot listen on ${where}: binding port ${port} needs privileges (EACCES); use a port above 1023`;
    default:
      return `cannot listen on ${where}: ${err.message}`;
  }
}

/** Binds the app and resolves with the port it got (--port 0: any free one). */
export async function listenOrExplain(app: FastifyInstance, host: string, port: number): Promise<number> {
  try {
    await app.listen({ host, port });
  } catch (e) {
    throw new ListenError(explain(e as NodeJS.ErrnoException, host, port), { cause: e });
  }
  const addr = app.server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}
