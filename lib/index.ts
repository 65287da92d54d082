/**
 * The kernel of @blockchain-of-things/node-red: pure TypeScript, no Node-RED import.
 * Usable on its own, by the Node-RED nodes and by the bot-ledger command. The design it
 * implements is docs/design.md (formats, storage, sync, consensus, partner access), and
 * its threat model docs/threat-model.md.
 */
export * from './errors';
export * from './format/bytes';
export * from './format/jcs';
export * from './format/identity';
export * from './format/envelope';
export { SignPool } from './format/sign-pool';
export type { SignPoolOptions, SignPoolStats } from './format/sign-pool';
export * from './format/merkle';
export * from './format/note';
export * from './format/topic';
export { Ledger, checkOrigin } from './store/ledger';
export type { Receipt, Entry, StoredCheckpoint, LedgerOptions, Query, AuxStore, Commit } from './store/ledger';
export { auditLedger } from './store/audit';
export { SequenceCounter, sharedSequence } from './store/sequence';
export { acquireLedger } from './store/registry';
export type { LedgerLease, AcquireOptions } from './store/registry';
export type { AuditResult, AuditOptions, AuditProgress } from './store/audit';
export * from './consortium/witness';
export * from './consortium/quorum';
export * from './format/tlog-policy';
export * from './format/equivocation';
export { MqttLink, RpcError, MAX_MESSAGE_BYTES, MAX_ANSWER_BYTES, redactUrl, urlHasPassword } from './consortium/mqtt-link';
export type { LinkOptions, LinkState, LinkDrop, DropReason } from './consortium/mqtt-link';
export { LedgerPublisher, ledgerTopics, answerLedgerRpc } from './consortium/publisher';
export { provenQuery, proveEntries, queryFrom } from './access/answer';
export type { ProvenAnswer, ProvenEntry } from './access/answer';
export { Consortium, ConsensusError, MAX_CONSENSUS_NOTE_BYTES } from './consortium/consortium';
export type { ConsortiumOptions, WitnessedLedger, EntryStatus, ConsensusState, ConsortiumInfo } from './consortium/consortium';
export { entryState, checkpointState } from './consortium/entry-state';
export type { EntryFacts, EntryState } from './consortium/entry-state';
export { Mirror } from './consortium/mirror';
export type { MirrorOptions, MirrorState } from './consortium/mirror';
export * from './access/grants';
export * from './access/access';
export * from './access/partner';
export { LineThrottle, RateMeter } from './view/rate';
export { RateLimiter, DEFAULT_RATE_LIMITS } from './access/rate-limit';
export type { RateLimits } from './access/rate-limit';
export { checkFolder, createFolder } from './store/folders';
export { installationId } from './store/installation';
export { LedgerService } from './service/ledger-service';
export type { LedgerServiceOptions, LedgerServiceLink, LedgerServiceEvents, MirrorInfo } from './service/ledger-service';
export { ledgerDirName, checkBrokerUrl, readTlsFiles, MAX_ENTRY_LIMIT } from './service/ledger-settings';
export type { TlsFiles } from './service/ledger-settings';
export * from './confidential/hpke';
export * from './confidential/seal';
export * from './confidential/keys';
export * from './confidential/owner';
export { mirrorRpcTopic } from './consortium/mirror';
export * from './format/tlog-tiles';
export { TileReader, tileResponse, CHECKPOINT_CACHE, FULL_TILE_CACHE, PARTIAL_TILE_CACHE } from './store/tile-reader';
export type { TileSource, TileResponse, TileResponseOptions } from './store/tile-reader';
export * from './devices/device-terms';
export * from './devices/device-registry';
export * from './devices/device-activity';
