// Free TCP port selection on 127.0.0.1.
import net from "node:net";

function listenOnFreePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => resolve(server));
  });
}

/**
 * Returns `count` distinct ports that were free on 127.0.0.1 a moment ago.
 * All listeners stay open until every port is chosen, so the ports differ.
 * Another process can still take one before the caller binds it.
 */
export async function freePorts(count) {
  const servers = [];
  try {
    for (let index = 0; index < count; index += 1) {
      servers.push(await listenOnFreePort());
    }
    return servers.map((server) => server.address().port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/** Returns one port that was free on 127.0.0.1 a moment ago. */
export async function freePort() {
  const [port] = await freePorts(1);
  return port;
}

// `node lib/ports.mjs N` prints N free ports, one per line, for shell scripts.
if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[2] ?? 1);
  if (!Number.isInteger(count) || count < 1) {
    console.error(`usage: node ports.mjs COUNT (a positive integer), got ${process.argv[2]}`);
    process.exit(2);
  }
  for (const port of await freePorts(count)) {
    console.log(port);
  }
}
