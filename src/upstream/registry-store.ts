/**
 * Where the servers registered on the admin API are kept across restarts: the small interface
 * the pool registry writes through, so that another store (etcd, say) can replace the file
 * store (file-registry-store.ts) without touching the pools.
 *
 * Contract: put() and delete() resolve only once the change is durable (it survives a crash of
 * the process or the machine), and reject when it could not be made so; a rejected change is
 * not applied. load() is called once, before any change, and never rejects for damaged
 * content: what it cannot read it names in the log and leaves out.
 */
import type { Registration } from './pool-registry.js';

export interface StoredServer {
  /** The server id it was stored under; null for entries of the old servers.json array. */
  id: string | null;
  registration: Registration;
}

export interface RegistryStore {
  /** Where the store keeps its data, for messages ("/data/servers.json", "etcd://..."). */
  readonly where: string;
  /** The registrations kept, in the order they were first made. */
  load(): Promise<StoredServer[]>;
  /** Keeps (or replaces) the registration of server `id`. */
  put(id: string, registration: Registration): Promise<void>;
  /** Forgets server `id` (nothing to do when it is not kept). */
  delete(id: string): Promise<void>;
  /**
   * Called once after entries loaded without an id were put again with their id: the store
   * may now drop its old-format data (a no-op for stores that never had one).
   */
  migrated(): Promise<void>;
  close(): Promise<void>;
}
