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
 * The key is not exported from the package (index.ts), so no caller outside walnut holds it.
 */
import { walnutError } from './errors';

export const CONSTRUCT_KEY: unique symbol = Symbol('walnut internal constructor');

/** Throws WALNUT_INVALID_ARGUMENT (reason 'constructor') unless `key` is CONSTRUCT_KEY. */
export function refuseDirectConstruction(key: unknown, what: string, through: string): void {
  if (key !== CONSTRUCT_KEY) throw walnutError('WALNUT_INVALID_ARGUMENT', `${what} is not constructed directly: ${through} gives one`, { reason: 'constructor' });
}
