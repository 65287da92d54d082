/**
 * bot-identity (config node): an Ed25519 key pair. The secret seed lives only in Node-RED
 * credentials (type password) or, when those hold none, in a key file on the server (PEM,
 * mode 0600, generated on first use): never in flow JSON, a msg, the log, a status or an error.
 *
 * Admin endpoint (nodes/admin-routes.ts): POST /bot-identity/did {secretKey} | {id} → {did}, so the
 * editor can show the did:key of a key typed or generated in the browser, or of a deployed node.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BotError } from '../lib/errors';
import { createFolder } from '../lib/store/folders';
import { Identity } from '../lib/format/identity';
import { registerAdminRoutes } from './admin-routes';
import type { NodeAPI, NodeDef } from './red-api';
import { type BotIdentityNode, userPath } from './config-nodes';

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

  registerAdminRoutes(RED);
};
