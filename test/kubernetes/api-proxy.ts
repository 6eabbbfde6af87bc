/**
 * A TCP proxy between the services and kube-apiserver: the network path between them (a load balancer,
 * or kube-proxy's DNAT of the `kubernetes` Service) on which the tier injects the faults that a clean
 * restart never shows. TLS passes through untouched (the proxy listens on the API server's address, so
 * its certificate still matches).
 *
 * partition(): from then on nothing crosses. Bytes on open connections are held back; a close or a reset
 * from either side is not passed on; new connections are accepted and left waiting. The services' side
 * sees exactly what a frozen API server or a dead network path looks like: an established connection
 * whose peer still acknowledges (here the proxy's kernel) and never says anything.
 * resetAll(): every open connection is reset, as a flapping path does.
 * heal(): connections that waited are connected to the API server and go through. An open connection
 * whose API server side is still there resumes (TCP would retransmit what the partition held back); one
 * whose API server side went away meanwhile (the API server restarted) is dead for good, as a real one
 * is after its FIN and RST were lost: nothing ever arrives on it, and writing to it gets a reset.
 */
import net from 'node:net';

interface Link {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** The API server's side closed (or failed) while the partition was on. */
  upstreamGone: boolean;
  /** Never relays anything again. */
  dead: boolean;
  /** Held back by the partition, in each direction. */
  toUpstream: Buffer[];
  toClient: Buffer[];
}

export class ApiProxy {
  readonly #server: net.Server;
  readonly #links = new Set<Link>();
  #partitioned = false;

  private constructor(
    private readonly target: { host: string; port: number },
    server: net.Server,
  ) {
    this.#server = server;
  }

  /** Listens on `target.host`, on a port of its own. */
  static async start(target: { host: string; port: number }): Promise<ApiProxy> {
    const server = net.createServer();
    const proxy = new ApiProxy(target, server);
    server.on('connection', (client: net.Socket) => proxy.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, target.host, () => resolve());
    });
    return proxy;
  }

  get url(): string {
    const { port } = this.#server.address() as net.AddressInfo;
    return `https://${this.target.host}:${port}`;
  }

  get partitioned(): boolean {
    return this.#partitioned;
  }

  /** Connections open now: all of them, and those that will never carry anything again. */
  counts(): { open: number; dead: number } {
    const links = [...this.#links];
    return { open: links.length, dead: links.filter((l) => l.dead).length };
  }

  /**
   * Resets every open connection (a path that flaps): each watch fails at once and begins again, so
   * afterwards every watch is younger than the time since the reset.
   */
  resetAll(): void {
    for (const link of [...this.#links]) {
      link.client.resetAndDestroy();
      link.upstream?.destroy();
      this.#links.delete(link);
    }
  }

  partition(): void {
    this.#partitioned = true;
  }

  heal(): void {
    this.#partitioned = false;
    for (const link of [...this.#links]) {
      if (link.dead) continue;
      if (link.client.destroyed) {
        this.#drop(link);
      } else if (!link.upstream) {
        this.#connect(link);
      } else if (link.upstreamGone) {
        // Its FIN or RST was lost in the partition: the services' side never learns.
        link.dead = true;
        link.toUpstream = [];
        link.toClient = [];
      } else {
        this.#flush(link);
      }
    }
  }

  async close(): Promise<void> {
    for (const link of [...this.#links]) this.#drop(link);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const link: Link = {
      client,
      upstream: undefined,
      upstreamGone: false,
      dead: false,
      toUpstream: [],
      toClient: [],
    };
    this.#links.add(link);
    client.on('data', (chunk: Buffer) => {
      if (link.dead) {
        // A half-open connection: the API server's kernel answers anything that arrives with a reset.
        client.resetAndDestroy();
        this.#links.delete(link);
      } else if (this.#partitioned || !link.upstream || link.upstream.connecting) {
        link.toUpstream.push(chunk);
      } else {
        link.upstream.write(chunk);
      }
    });
    client.on('error', () => undefined);
    client.on('close', () => {
      if (this.#partitioned || link.dead) return; // Lost, or nobody left to tell.
      this.#drop(link);
    });
    if (!this.#partitioned) this.#connect(link);
  }

  #connect(link: Link): void {
    const upstream = net.connect(this.target.port, this.target.host);
    link.upstream = upstream;
    upstream.on('connect', () => {
      if (!this.#partitioned) this.#flush(link);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (link.dead) return;
      if (this.#partitioned) link.toClient.push(chunk);
      else link.client.write(chunk);
    });
    upstream.on('error', () => undefined);
    upstream.on('close', (hadError) => {
      if (link.dead) return;
      if (this.#partitioned) {
        link.upstreamGone = true;
        return;
      }
      // Passed on: a reset as a reset (the API server is down: the services see the connection fail),
      // an end as an end once what is buffered is written.
      this.#links.delete(link);
      if (hadError) {
        link.client.resetAndDestroy();
        return;
      }
      for (const chunk of link.toClient.splice(0)) link.client.write(chunk);
      link.client.end();
    });
  }

  #flush(link: Link): void {
    const upstream = link.upstream;
    if (!upstream || upstream.connecting) return;
    for (const chunk of link.toUpstream.splice(0)) upstream.write(chunk);
    for (const chunk of link.toClient.splice(0)) link.client.write(chunk);
  }

  #drop(link: Link): void {
    link.client.destroy();
    link.upstream?.destroy();
    this.#links.delete(link);
  }
}
