import { FieldOp } from './revisioned-map';

/** A document as the shared tier (L2) holds it: fields encoded as strings. */
export interface SharedDoc {
  revision: number;
  /** Epoch ms of the etcd read the document descends from; watch-applied changes keep it. */
  readAt: number;
  fields: Record<string, string>;
}

/** The changes of one etcd revision to one document. */
export interface SharedChange {
  doc: string;
  revision: number;
  ops: readonly FieldOp<string>[];
}

export interface SharedStamp {
  revision: number;
  readAt: number;
}

/**
 * The L2 tier shared by all replicas (Redis in production). Every write is conditional on the
 * revision, so replicas racing each other, or a replica with an old read, can never move a document
 * backwards. Methods reject when the store is unreachable; callers treat that as a miss.
 */
export interface SharedStore {
  read(doc: string): Promise<SharedDoc | undefined>;
  /** Revision and read time of `doc`, and whether a replica holds its refresh lock: one cheap round trip. */
  poll(doc: string): Promise<{ stamp: SharedStamp | undefined; locked: boolean }>;
  /** Stores `value` unless a newer revision is there; the same revision only advances readAt. */
  replace(doc: string, value: SharedDoc, ttlMs: number): Promise<void>;
  /**
   * Applies changes, each one revision of one document, in order; a document absent or held at that
   * revision or a newer one is left alone. One call per watch response: one round trip, not one per event.
   */
  apply(changes: readonly SharedChange[]): Promise<void>;
  /** Takes the refresh lock of `doc` (SET NX PX); false when another replica holds it. */
  tryLock(doc: string, token: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock if `token` still holds it (an expired lock may belong to someone else by now). */
  unlock(doc: string, token: string): Promise<void>;
  /** Whether the store is connected, as far as the client knows (no I/O). */
  isUp(): boolean;
}
