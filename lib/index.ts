/**
 * The kernel of @blockchain-of-things/node-red: pure TypeScript, no Node-RED import.
 * Usable on its own, by the Node-RED nodes and by the bot-ledger command. The design it
 * implements is docs/design.md (formats, storage, sync, consensus, partner access), and
 * its threat model docs/threat-model.md.
 */
export * from './errors';
export * from './bytes';
export * from './jcs';
export * from './identity';
export * from './envelope';
export * from './merkle';
export * from './note';
export * from './topic';
export { Ledger, checkOrigin } from './ledger';
export type { Receipt, Entry, StoredCheckpoint, LedgerOptions, Query, AuxStore, Commit } from './ledger';
export { auditLedger } from './audit';
export { SequenceCounter, sharedSequence } from './sequence';
export { acquireLedger } from './registry';
export type { LedgerLease, AcquireOptions } from './registry';
export type { AuditResult, AuditOptions, AuditProgress } from './audit';
export * from './witness';
export * from './quorum';
export * from './policy';
export * from './equivocation';
export { MqttLink, RpcError, MAX_MESSAGE_BYTES, MAX_ANSWER_BYTES, redactUrl, urlHasPassword } from './mqtt-link';
export type { LinkOptions, LinkState, LinkDrop, DropReason } from './mqtt-link';
export { LedgerPublisher, ledgerTopics, answerLedgerRpc } from './sync';
export { provenQuery, proveEntries, queryFrom } from './answer';
export type { ProvenAnswer, ProvenEntry } from './answer';
export { Consortium, ConsensusError, MAX_CONSENSUS_NOTE_BYTES } from './consensus';
export type { ConsortiumOptions, WitnessedLedger, EntryStatus, ConsensusState, ConsortiumInfo } from './consensus';
export { Mirror } from './mirror';
export type { MirrorOptions, MirrorState } from './mirror';
export * from './grants';
export * from './access';
export * from './partner';
export { RateMeter } from './rate';
export { RateLimiter, DEFAULT_RATE_LIMITS } from './rate-limit';
export type { RateLimits } from './rate-limit';
export { checkFolder, createFolder } from './folders';
export { installationId } from './installation';
