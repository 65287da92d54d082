/**
 * bot-identity (config node): an Ed25519 key pair. The secret seed lives only in Node-RED
 * credentials (type password) or, when those hold none, in a key file on the server (PEM,
 * mode 0600, generated on first use): never in flow JSON, a msg, the log, a status or an error.
 *
 * Admin endpoint: POST /bot-identity/did {secretKey} | {id} → {did}, so the editor can show
 * the did:key of a key typed or generated in the browser, or of a deployed node.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BotError } from '../lib/errors';
import { createFolder } from '../lib/store/folders';
import { Identity } from '../lib/format/identity';
import { type AdminRequest, type AdminResponse, type BotIdentityNode, type NodeAPI, type NodeDef, userPath } from './red';

interface BotIdentityDef extends NodeDef {
  name?: string;
  /** Key file used when the credentials hold no secret key (default <userDir>/bot-keys/<id>.pem). */
  keyFile?: string;
}

/** Read a PEM key file (refusing one others can read), or create it with a new key (mode 0600). */
function loadOrCreateKeyFile(file: string): { identity: Identity; created: boolean } {
  if (!fs.existsSync(file)) {
    const id = Identity.generate();
    try {
      createFolder(path.dirname(file), 'a key file', 0o700);
      id.writeKeyFile(file);
      return { identity: id, created: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new BotError('E_KEY', `cannot create the key file ${file}: ${(err as Error).message}`);
    }
  }
  return { identity: Identity.fromFile(file), created: false };
}

const registered = new WeakSet<object>();

export = function (RED: NodeAPI): void {
  function BotIdentity(this: BotIdentityNode, def: BotIdentityDef): void {
    RED.nodes.createNode(this, def);
    this.name = def.name;
    this.identity = undefined;
    this.configError = undefined;
    const secret = this.credentials?.secretKey;
    try {
      if (typeof secret === 'string' && secret.trim() !== '') {
        this.identity = Identity.import(secret); // never echoes the text it was given
      } else {
        // No key in the credentials: a key file on the server (mode 0600), created on first use.
        const file = (def.keyFile ?? '').trim() || userPath(RED, 'bot-keys', `${this.id.replace(/[^A-Za-z0-9._-]/g, '_')}.pem`);
        const { identity, created } = loadOrCreateKeyFile(file);
        this.identity = identity;
        if (created) this.log(`generated a new key ${identity.did} in ${file}`);
      }
    } catch (err) {
      this.configError = err instanceof BotError ? err : new BotError('E_KEY', 'the secret key cannot be read');
      this.error(this.configError.message);
    }
  }

  RED.nodes.registerType('bot-identity', BotIdentity, { credentials: { secretKey: { type: 'password' } } });

  const http = RED.httpAdmin;
  if (http && !registered.has(http)) {
    registered.add(http);
    const perm = RED.auth?.needsPermission('bot-identity.read') ?? ((_q, _s, next) => next());
    http.post('/bot-identity/did', perm, (req: AdminRequest, res: AdminResponse) => {
      const body = (req.body ?? {}) as { secretKey?: unknown; id?: unknown };
      try {
        if (typeof body.secretKey === 'string' && body.secretKey !== '' && body.secretKey !== '__PWRD__') {
          res.json({ did: Identity.import(body.secretKey).did });
        } else if (typeof body.id === 'string' && body.id !== '') {
          const n = RED.nodes.getNode(body.id) as Partial<BotIdentityNode> | null;
          if (!n || n.type !== 'bot-identity') {
            res.status(404).json({ error: 'no deployed bot-identity with that id' });
            return;
          }
          if (!n.identity) {
            res.status(409).json({ error: n.configError?.message ?? 'the deployed identity has no usable key' });
            return;
          }
          res.json({ did: n.identity.did });
        } else {
          res.status(400).json({ error: 'send {secretKey} or {id}' });
        }
      } catch (err) {
        res.status(400).json({ error: err instanceof BotError ? err.message : 'the secret key cannot be read' });
      }
    });
  }
};
