/** The shared MQTT connection against a real Mosquitto: subscriptions, retained state, RPC, broker restarts. */
import { strict as assert } from 'node:assert';
import { LedgerError } from '../../lib/errors';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { Mosquitto } from '../mosquitto';
import { until } from '../helpers';

describe('MqttLink (real MQTT broker)', function () {
  this.timeout(60000);
  let broker: Mosquitto;
  const links: MqttLink[] = [];
  const link = (id: string): MqttLink => {
    const l = new MqttLink({ url: broker.url, clientId: id, reconnectMs: 100, maxReconnectMs: 500 });
    l.on('error', () => undefined);
    links.push(l);
    l.start();
    return l;
  };
  before(async () => {
    broker = await Mosquitto.start();
  });
  after(async () => {
    await Promise.all(links.map((l) => l.close()));
    await broker.close();
  });

  it('delivers to subscribers, answers RPC, maps errors and times out', async () => {
    const a = link('a1'),
      b = link('b1');
    await until('connected', () => a.state === 'connected' && b.state === 'connected');
    const got: string[] = [];
    b.subscribe('bot/v1/x/+', (t, p) => got.push(`${t}=${p.toString()}`));
    await new Promise((r) => setTimeout(r, 200));
    await a.publish('bot/v1/x/entries', 'hello');
    await until('message', () => got.length === 1);
    assert.deepEqual(got, ['bot/v1/x/entries=hello']);
    b.serve('bot/v1/x/rpc', async (method, params) => {
      if (method === 'echo') return params;
      throw new LedgerError('E_RANGE', 'no such thing');
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await a.request('bot/v1/x/rpc', 'echo', { n: 1 }), { n: 1 });
    await assert.rejects(a.request('bot/v1/x/rpc', 'other', {}), { code: 'E_RANGE', message: 'no such thing' });
    await assert.rejects(a.request('bot/v1/nobody/rpc', 'echo', {}, 300), { code: 'E_TIMEOUT' });
  });

  it('survives a broker restart: reconnects, resubscribes and republishes its retained state', async () => {
    const a = link('a2'),
      b = link('b2');
    await until('connected', () => a.state === 'connected' && b.state === 'connected');
    let republished = 0;
    a.onConnect(() => {
      republished++;
      a.publish('bot/v1/y/checkpoint', `cp${republished}`, { retain: true }).catch(() => undefined);
    });
    const seen: string[] = [];
    b.subscribe('bot/v1/y/checkpoint', (_t, p) => seen.push(p.toString()));
    await until('first retained', () => seen.includes('cp1'));
    await broker.restart();
    await until('reconnected', () => a.state === 'connected' && b.state === 'connected' && republished >= 2);
    await until('republished retained after restart', () => seen.some((s) => s !== 'cp1'));
    await assert.rejects(new MqttLink({ url: 'mqtt://127.0.0.1:1' }).publish('x', 'y'), { code: 'E_CLOSED' });
    assert.throws(() => new MqttLink({ url: 'http://example.com' }), { code: 'E_QUERY' });
  });
});
