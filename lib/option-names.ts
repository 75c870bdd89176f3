/**
 * option-names.ts — the one check of an options object's names, shared by every verb that
 * takes options (open, commit, metrics, snapshot, exportTo, restore, restoreFromNats, verify,
 * replicateTo, openReplica): a name the verb does not take is refused, never dropped, since a
 * misspelt option (maxInflight, unitl, folow) would silently fall back to its default.
 *
 * Invariant: only the names are looked at here (own enumerable keys, in their order); each
 * caller refuses in its own words, with its own error code and reason, which callers and
 * tests rely on.
 */

/** The first own key of `options` that is not in `known`, or undefined when it takes them all. */
export function unknownOptionName(options: object, known: readonly string[]): string | undefined {
  return Object.keys(options).find((k) => !known.includes(k));
}
