/**
 * option-names.ts — the one check of an options object's names, shared by every verb that
 * takes options (open, commit, metrics, snapshot, exportTo, restore, restoreFromNats, verify,
 * replicateTo, openReplica): a name the verb does not take is refused, never dropped, since a
 * misspelt option (maxInflight, unitl, folow) would silently fall back to its default.
 *
 * And the one rule for null, for every verb and option: only `undefined` is "not given" (an
 * options argument left out, an option not named). `null` — as the options argument
 * (`snapshot(null)`, `open(path, null)`) or as an option's value (`{ busyTimeout: null }`,
 * `{ synchronous: null }`) — is a value like any other that is not the one taken, refused by the
 * verb's own check with WALNUT_INVALID_ARGUMENT naming it (reason 'options' or the option's
 * name). Why: JSON configs turn what their author meant as "off", "no limit" or "default" into
 * null alike, and a verb cannot tell which (busyTimeout: null read as the default waits 5 s, read
 * as 0 never); a few verbs defaulted it and most refused it. Verbs read a value through givenOr
 * (a `??` would default null). Not so the verbs that end something (arguments.ts: they take
 * whatever they get).
 *
 * Invariant: only the names are looked at here (enumerable string keys, own and inherited, in
 * for-in order: the verbs read their options as properties, so an options object built on a
 * prototype — Object.create(defaults) — has its inherited names taken, and must have them
 * checked; Symbol keys are no option names); each caller refuses in its own words, with its own
 * error code and reason, which callers and tests rely on. A verb that takes some names itself
 * and hands the rest on to another verb (openDatabase to open(), createExportStream to the
 * export) hands on inherited names too (optionsWithout): an object spread would drop them
 * unchecked.
 */

/** The first name of `options` that is not in `known`, or undefined when it takes them all. */
export function unknownOptionName(options: object, known: readonly string[]): string | undefined {
  for (const k in options) if (!known.includes(k)) return k;
  return undefined;
}

/** The names of `options` (as unknownOptionName sees them) but `taken`, with their values: what a verb hands on. */
export function optionsWithout(options: object, taken: readonly string[]): Record<string, unknown> {
  const rest: Record<string, unknown> = {};
  for (const k in options) if (!taken.includes(k)) rest[k] = (options as Record<string, unknown>)[k];
  return rest;
}

/** An options argument or an option's value as a verb reads it: `fallback` when not given (undefined), else as given, null too (the verb's check refuses it: header). */
export function givenOr<T>(value: unknown, fallback: T): unknown {
  return value === undefined ? fallback : value;
}
