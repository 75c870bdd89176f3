/**
 * arguments.ts — the one rule for arguments a public verb does not take: past the ones it
 * declares, any argument that is not `undefined` is refused (WALNUT_INVALID_ARGUMENT, reason
 * 'options', as an option name a verb does not take is: option-names.ts), before the verb does
 * anything. Why: such an argument is a caller's mistake that would otherwise be dropped without
 * a word — options given to a verb that takes none (`checkpoint('truncate', { busyTimeout })`,
 * `close({ keepWal: true })`), parameters given to `exec()` (better-sqlite3's binds none), a
 * buffer given to `snapshot.read(pgno, out)`, a Node-style callback. `undefined` is no argument
 * (a wrapper passes its own optional arguments on as they came).
 *
 * Not refused: the verbs that end something (close(), snapshot.release(), tx.rollback(), a
 * replication's or replica's stop()/close()). They are handed to event emitters and promise
 * chains as callbacks (`process.once('SIGTERM', store.close.bind(store))` passes the signal's
 * name), and a refusal there would leave locks and files held: they take whatever they get,
 * but for a number given to an export's or a replication's stop(), which reads as a timeout
 * (stream.ts stopTimeoutOf, publisher.ts stopArgumentError).
 *
 * Invariant: the check reads only `arguments.length` and the extra arguments themselves, never
 * the declared ones; callers test `arguments.length > declared` first, so a verb on a hot path
 * (commit, sequence, readSync) pays one comparison when called right.
 *
 * Also here: describeValue (a bad value named without String()), and the real sizes of the
 * caller's typed arrays (uint8Length, uint32Length, viewBytes), read with the intrinsic getters.
 */
import { WalnutError, walnutError } from './errors';

/**
 * WALNUT_INVALID_ARGUMENT (reason 'options') when an argument past the first `declared` of
 * `args` is not undefined, else null: for verbs that answer with a promise (they reject with
 * it). `takes` says what the verb takes, for the message ("only a mode", "no arguments").
 */
export function extraArgumentError(verb: string, takes: string, declared: number, args: ArrayLike<unknown>): WalnutError | null {
  for (let i = declared; i < args.length; i++) {
    if (args[i] !== undefined) {
      const type = typeof args[i];
      const what = args[i] === null ? 'null' : type === 'object' ? 'an object' : `a ${type}`;
      return walnutError('WALNUT_INVALID_ARGUMENT', `${verb} takes ${takes}, not ${args.length} arguments (argument ${i + 1} is ${what})`, { reason: 'options' });
    }
  }
  return null;
}

/** extraArgumentError, thrown: for synchronous verbs (and inside a verb's own try/catch). */
export function refuseExtraArguments(verb: string, takes: string, declared: number, args: ArrayLike<unknown>): void {
  const e = extraArgumentError(verb, takes, declared, args);
  if (e !== null) throw e;
}

/**
 * What a verb throws when reading its caller's input threw: a WalnutError as it is (the verb's
 * own refusal), anything else — a getter, a Proxy trap or a toString of the caller's that threw —
 * as WALNUT_INVALID_ARGUMENT with `reason` naming the argument and the original as `cause`.
 * Callers read their input before they change anything, so the refusal leaves nothing behind.
 */
export function asInputError(e: unknown, reason: string): unknown {
  if (e instanceof WalnutError) return e;
  const what = e instanceof Error ? `${e.name}: ${e.message}` : describeValue(e);
  return walnutError('WALNUT_INVALID_ARGUMENT', `reading the ${reason} threw (${what})`, { reason, cause: e });
}

/** Runs `read` (a verb's reading of its caller's input), its throws as asInputError makes them. */
export function readInput<T>(reason: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    throw asInputError(e, reason);
  }
}

/**
 * A caller's value as an error message shows it, without running any of the caller's code:
 * String() of a Proxy runs its traps, of a detached typed array throws (join), of an object its
 * toString — and a refusal whose message cannot be made would escape as that TypeError, not
 * the verb's WalnutError (a synchronous throw from a verb that answers with a promise).
 */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(v);
    case 'bigint':
      return `${v}n`;
    case 'string':
      return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      if (v === null) return 'null';
      if (ArrayBuffer.isView(v)) return 'a typed array';
      return Array.isArray(v) ? 'an array' : 'an object';
  }
}

/** %TypedArray%.prototype's and DataView.prototype's own getters: what a subclass's accessors or an own property cannot change. */
const TYPED_ARRAY_PROTOTYPE = Object.getPrototypeOf(Uint8Array.prototype) as object;
const intrinsic = <T>(proto: object, name: PropertyKey): ((this: unknown) => T) => Object.getOwnPropertyDescriptor(proto, name)!.get! as (this: unknown) => T;
const typedArrayTag = intrinsic<string | undefined>(TYPED_ARRAY_PROTOTYPE, Symbol.toStringTag);
const typedArrayLength = intrinsic<number>(TYPED_ARRAY_PROTOTYPE, 'length');
const typedArrayView = { buffer: intrinsic<ArrayBufferLike>(TYPED_ARRAY_PROTOTYPE, 'buffer'), byteOffset: intrinsic<number>(TYPED_ARRAY_PROTOTYPE, 'byteOffset'), byteLength: intrinsic<number>(TYPED_ARRAY_PROTOTYPE, 'byteLength') };
const dataViewView = { buffer: intrinsic<ArrayBufferLike>(DataView.prototype, 'buffer'), byteOffset: intrinsic<number>(DataView.prototype, 'byteOffset'), byteLength: intrinsic<number>(DataView.prototype, 'byteLength') };

/**
 * The bytes a Uint8Array of this realm (a Buffer, a subclass) really has, or -1 for anything
 * else (a Proxy of one too): read with the intrinsic getters, not a `length` or `byteLength` of
 * the caller's (a subclass's getter, an own property). What copies the bytes (TypedArray set,
 * the addon) copies that many whatever such a property says: a page whose getter said pageSize
 * for 10 real bytes left the rest of walnut's reused slab (another commit's page) in the frame
 * (commit/pages.ts); a blob whose byteLength said 8 for 4 KiB overflowed the wasm heap
 * allocation wa-sqlite made for it (sql/statement-runner.ts).
 */
export function uint8Length(v: unknown): number {
  return v instanceof Uint8Array && typedArrayTag.call(v) === 'Uint8Array' ? typedArrayLength.call(v) : -1;
}

/** uint8Length for a Uint32Array (snapshot.framesOf's out): its real number of entries, or -1 for anything else. */
export function uint32Length(v: unknown): number {
  return v instanceof Uint32Array && typedArrayTag.call(v) === 'Uint32Array' ? typedArrayLength.call(v) : -1;
}

/**
 * The bytes an ArrayBufferView (any typed array or DataView, of any realm) views, as a
 * Uint8Array, read with the intrinsic getters (as uint8Length); 'detached' when its buffer was
 * transferred; null for anything else (a Proxy of a view too). A Uint8Array of this realm is
 * itself; another view is a new Uint8Array over the same bytes (walnut/sql binds it as a blob,
 * as better-sqlite3 binds any view).
 */
export function viewBytes(v: unknown): Uint8Array | 'detached' | null {
  if (!ArrayBuffer.isView(v)) return null;
  const own = uint8Length(v);
  try {
    const get = typedArrayTag.call(v) !== undefined ? typedArrayView : dataViewView;
    const buffer = get.buffer.call(v);
    const bytes = own >= 0 ? (v as Uint8Array) : new Uint8Array(buffer, get.byteOffset.call(v), get.byteLength.call(v));
    if (own === 0) new Uint8Array(buffer, 0, 0); // throws for a detached buffer (an empty view of one looks like any empty view)
    return bytes;
  } catch {
    return 'detached'; // a detached view: 0 offset and length, and no view of its buffer can be made (a DataView's getters throw)
  }
}
