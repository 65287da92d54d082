/**
 * The MQTT fixture of an integration describe block: a real broker (test/mosquitto.ts) and a
 * temporary directory, started before its tests, and the MqttLinks its tests open, all closed
 * after them (links first, then the broker, then the directory is removed).
 */
import { MqttLink } from '../lib/consortium/mqtt-link';
import { Mosquitto } from './mosquitto';
import { tmpDir } from './helpers';

/** What a describe block's tests use: the broker, the directory, and a link factory. */
export interface MqttFixture {
  /** The broker (started in the block's before hook). */
  readonly broker: Mosquitto;
  /** The temporary directory (made in the block's before hook). */
  readonly dir: string;
  /** A started MqttLink to the broker (reconnecting every 100 ms; errors ignored), closed after the block. */
  link(): MqttLink;
}

/** Register the before/after hooks of an MQTT fixture in the current describe block (call it in the block's body). */
export function mqttFixture(prefix: string): MqttFixture {
  let broker: Mosquitto | undefined;
  let t: ReturnType<typeof tmpDir> | undefined;
  const links: MqttLink[] = [];
  before(async () => {
    broker = await Mosquitto.start();
    t = tmpDir(prefix);
  });
  after(async () => {
    await Promise.all(links.map((l) => l.close()));
    await broker?.close();
    t?.cleanup();
  });
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('the MQTT fixture is used before its before hook ran');
    return v;
  };
  return {
    get broker() {
      return started(broker);
    },
    get dir() {
      return started(t).dir;
    },
    link() {
      const l = new MqttLink({ url: started(broker).url, reconnectMs: 100 });
      l.on('error', () => undefined);
      links.push(l);
      l.start();
      return l;
    },
  };
}
