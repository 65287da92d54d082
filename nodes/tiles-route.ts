/**
 * A deployed bot-ledger's running ledger as a C2SP tlog-tiles log on Node-RED's admin API,
 * read-only (docs/design.md "The tiles view"), under
 *
 *   GET <httpAdminRoot>/bot-ledger/ledgers/:id/tiles/checkpoint                  (bot-ledger.read)
 *   GET <httpAdminRoot>/bot-ledger/ledgers/:id/tiles/tile/<L>/<N>[.p/<W>]
 *   GET <httpAdminRoot>/bot-ledger/ledgers/:id/tiles/tile/entries/<N>[.p/<W>]
 *
 * so `<httpAdminRoot>/bot-ledger/ledgers/<node id>/tiles/` is the log's URL prefix. It needs
 * the same permission as the entries endpoint (nodes/admin-routes.ts), which shows the same
 * entries; the answers are lib/store/tile-reader.ts tileResponse's (status, headers, bytes).
 */
import type { Ledger } from '../lib/store/ledger';
import { TileReader, tileResponse } from '../lib/store/tile-reader';
import type { BotLedgerNode } from './config-nodes';
import type { AdminHandler, AdminRequest, AdminResponse, HttpAdmin } from './red-api';

/** What this route reads of Express's request beyond AdminRequest. */
interface TilesRequest extends AdminRequest {
  method?: string;
  headers?: Record<string, string | string[] | undefined>;
}
/** What this route writes with (Express's response is a node:http ServerResponse). */
interface TilesResponse extends AdminResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: Buffer): void;
}

/** The route's path; Express puts what follows `tiles/` in params[0]. */
export const TILES_ROUTE = '/bot-ledger/ledgers/:id/tiles/*';

const readers = new WeakMap<Ledger, TileReader>();

/** The TileReader of a deployed bot-ledger's open ledger, or undefined when there is none. */
async function readerOf(n: BotLedgerNode | undefined): Promise<TileReader | undefined> {
  if (!n) return undefined;
  const ledger = await n.lease.ledger;
  if (ledger.closed) return undefined;
  let r = readers.get(ledger);
  if (!r) {
    r = new TileReader(ledger);
    readers.set(ledger, r);
  }
  return r;
}

/**
 * Register the tiles route on the admin app behind `guard` (bot-ledger.read); called once per
 * runtime by registerAdminRoutes, which knows the live ledgers and lets requests in.
 */
export function registerTilesRoute(http: HttpAdmin, guard: AdminHandler, live: (id: string) => BotLedgerNode | undefined): void {
  http.get(TILES_ROUTE, guard, (req: AdminRequest, res: AdminResponse) => {
    const q = req as TilesRequest;
    const s = res as TilesResponse;
    const accept = q.headers?.['accept-encoding'];
    readerOf(req.params.id === undefined ? undefined : live(req.params.id))
      .then(async (reader) => {
        if (!reader) return { status: 404, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: Buffer.from('no such ledger is deployed\n') };
        return tileResponse(reader, {
          method: q.method,
          url: '/' + (req.params['0'] ?? ''),
          acceptEncoding: Array.isArray(accept) ? accept.join(',') : accept,
        });
      })
      .catch(() => ({ status: 503, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: Buffer.from('the ledger is not available\n') }))
      .then((r) => {
        s.writeHead(r.status, r.headers);
        s.end(r.body);
      })
      .catch(() => undefined); // the client went away
  });
}
