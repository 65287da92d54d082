/**
 * A real MQTT broker from npm for the integration tests when Mosquitto is not installed:
 * aedes, in this separate process, over TCP (or TLS), with no persistence (a restart loses
 * retained messages, as Mosquitto without persistence does). Started by test/mosquitto.ts:
 *
 *   node aedes-broker.js <port> [<cert.pem> <key.pem>]
 *
 * prints "ready" on stdout once it listens; SIGTERM closes it.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';

async function main(): Promise<void> {
  const [port, cert, key] = process.argv.slice(2);
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const server = cert && key ? tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, broker.handle) : net.createServer(broker.handle);
  server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
  const stop = (): void => {
    server.close();
    broker.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
