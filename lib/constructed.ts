/**
 * constructed.ts — the key walnut's own code passes to the constructors of the classes a verb
 * hands out: Store (open()), Transaction (store.begin()), Snapshot (store.snapshot(), and every
 * connection's beginRead()), and walnut/sql's Database (openDatabase()) and Statement
 * (db.prepare()). They are exported as classes (instanceof, types) but are made only
 * through those verbs: a constructor called by anyone else — `new Store()`, `new Snapshot({}, …)`
 * — is refused with WALNUT_INVALID_ARGUMENT, reason 'constructor', before it reads anything it
 * was given. Why: their arguments are walnut's internal objects; without the key `new Store()`
 * threw a raw TypeError ("reading 'pageTrailers'"), `new Store(1, 2)` and `new Snapshot()` made
 * objects whose every method then threw raw TypeErrors (README: "construct them through those").
 *
 * The same key guards the methods of such a class that only walnut's own code calls, which a
 * class cannot make private across files (Snapshot's attachPending, moveToDatabaseFile,
 * canMoveToDatabaseFile, afterReadsInFlight, bringForward): called by anyone else they are
 * WALNUT_INVALID_ARGUMENT, reason 'internal', before they change anything (a caller's
 * snap.moveToDatabaseFile() made the snapshot read the database file under a WAL that held
 * newer pages, and leaked its read mark; snap.attachPending(5) made every later read and its
 * release() throw raw TypeErrors).
 *
 * The key is not exported from the package (index.ts), so no caller outside walnut holds it.
 */
import { walnutError } from './errors';

export const CONSTRUCT_KEY: unique symbol = Symbol('walnut internal constructor');

/** Throws WALNUT_INVALID_ARGUMENT (reason 'constructor') unless `key` is CONSTRUCT_KEY. */
export function refuseDirectConstruction(key: unknown, what: string, through: string): void {
  if (key !== CONSTRUCT_KEY) throw walnutError('WALNUT_INVALID_ARGUMENT', `${what} is not constructed directly: ${through} gives one`, { reason: 'constructor' });
}

/** Throws WALNUT_INVALID_ARGUMENT (reason 'internal') unless `key` is CONSTRUCT_KEY: `what` is walnut's own. */
export function refuseOutsideCall(key: unknown, what: string): void {
  if (key !== CONSTRUCT_KEY) throw walnutError('WALNUT_INVALID_ARGUMENT', `${what} is walnut's own, not part of the API`, { reason: 'internal' });
}
