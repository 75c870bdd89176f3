/**
 * option-names.ts — the one check of an options object's names, shared by every verb that
 * takes options (open, commit, metrics, snapshot, exportTo, restore, restoreFromNats, verify,
 * replicateTo, openReplica): a name the verb does not take is refused, never dropped, since a
 * misspelt option (maxInflight, unitl, folow) would silently fall back to its default.
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
