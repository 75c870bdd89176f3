/**
 * sql/sql-text.ts — what walnut/sql reads from SQL text before SQLite runs it, by SQLite's
 * tokens, not by words anywhere in the text: a word inside a string literal ('BEGIN'), a
 * comment, a quoted name, or the END of CASE ... END is not the keyword. Tokens as SQLite's
 * tokenizer (tokenize.c) splits them: whitespace and comments (`-- ..` to the line's end,
 * `/* .. *\/`, an unterminated one to the text's end) between tokens; '..' strings ('' inside is
 * one quote); "..", `..` and [..] quoted names ("" and `` inside are one); words of letters,
 * digits, `_`, `$` and every non-ASCII character; any other character a token of its own.
 *
 * Every answer here errs to the safe side for its caller: "may" means it may, so a text
 * SQLite would parse differently than read here is taken to do the thing asked about.
 */

/** A token's kind: a bare word (keyword or name), a quoted name, a string literal, anything else (one character). */
type TokenKind = 'word' | 'name' | 'string' | 'other';

interface Token {
  readonly kind: TokenKind;
  /** Its text, lower-cased; a quoted name's or a string's without the quotes (doubled ones made one). */
  readonly value: string;
}

/** Character codes the scanner tells apart. */
const QUOTE = 0x27; // '
const DQUOTE = 0x22; // "
const BACKTICK = 0x60; // `
const BRACKET = 0x5b; // [
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;

/** SQLite's identifier characters (tokenize.c IdChar): letters, digits, `_`, `$`, any non-ASCII. */
function isWordChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x24 || c >= 0x80;
}

/** SQLite's whitespace: space, tab, newline, form feed, carriage return. */
function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

/**
 * Calls `visit` with each token of `sql` in order (comments and whitespace skipped) until it
 * returns true (then true) or the text ends (false). A hand-written scan: a sticky regex of the
 * same rules took 4 µs for a 20-token INSERT, this well under one.
 */
export function scanTokens(sql: string, visit: (token: Token) => boolean): boolean {
  const n = sql.length;
  let at = 0;
  while (at < n) {
    const c = sql.charCodeAt(at);
    if (isSpace(c)) {
      at++;
    } else if (c === DASH && sql.charCodeAt(at + 1) === DASH) {
      const eol = sql.indexOf('\n', at);
      at = eol < 0 ? n : eol + 1;
    } else if (c === SLASH && sql.charCodeAt(at + 1) === STAR) {
      const close = sql.indexOf('*/', at + 2);
      at = close < 0 ? n : close + 2;
    } else if (c === QUOTE || c === DQUOTE || c === BACKTICK || c === BRACKET) {
      const quote = c === BRACKET ? ']' : sql[at]!;
      let value = '';
      let from = at + 1;
      for (;;) {
        const close = sql.indexOf(quote, from);
        if (close < 0) {
          value += sql.slice(from);
          at = n;
          break;
        }
        value += sql.slice(from, close);
        if (c !== BRACKET && sql[close + 1] === quote) {
          value += quote; // a doubled quote is one
          from = close + 2;
          continue;
        }
        at = close + 1;
        break;
      }
      if (visit({ kind: c === QUOTE ? 'string' : 'name', value: value.toLowerCase() })) return true;
    } else if (isWordChar(c)) {
      const from = at;
      while (++at < n && isWordChar(sql.charCodeAt(at)));
      if (visit({ kind: 'word', value: sql.slice(from, at).toLowerCase() })) return true;
    } else {
      if (visit({ kind: 'other', value: sql[at]! })) return true;
      at++;
    }
  }
  return false;
}

/**
 * The first `n` words of a statement, upper-cased, skipping whitespace and comments, and the
 * empty statements before its first word: SQLite skips those (`;COMMIT` prepares as COMMIT, and
 * ran inside transaction() when the first word was taken to be none). Anything but a bare word
 * ends them.
 */
export function leadingWords(sql: string, n: number): string[] {
  const words: string[] = [];
  if (n <= 0) return words;
  scanTokens(sql, (token) => {
    if (token.kind === 'word') words.push(token.value.toUpperCase());
    else if (words.length === 0 && token.kind === 'other' && token.value === ';') return false; // an empty statement
    else return true;
    return words.length >= n;
  });
  return words;
}

/** The words that name the TEMP schema (mayNameTempSchema). */
export const TEMP_WORDS: readonly string[] = ['temp', 'temporary'];

/**
 * A first test, by one regex, for any of `words` (letters, digits and `_`, any case) in SQL
 * text: text without one of them holds none as a token either, so the checks here that tokenize
 * it run only on text that passes (a plain INSERT is never tokenized). The words are each
 * check's own list, not a second copy of it.
 */
export function wordsPattern(words: Iterable<string>): RegExp {
  return new RegExp(`\\b(${[...words].join('|')})\\b`, 'i');
}

/** A check that `sql` may call a function among `names` (callsAny), tokenizing only text holding one of them (wordsPattern). */
export function callOf(names: readonly string[]): (sql: string) => boolean {
  const set: ReadonlySet<string> = new Set(names);
  const words = wordsPattern(names);
  return (sql) => words.test(sql) && callsAny(sql, set);
}

/**
 * True when `sql` may name the TEMP schema: TEMP or TEMPORARY right after CREATE (CREATE TEMP
 * TABLE/VIEW/TRIGGER), or `temp` as a schema before a `.` (CREATE TABLE temp.x, INSERT INTO
 * "temp".x; a string stands for a name there too, as SQLite reads `'temp'.x`), or a quoted name
 * `temp` anywhere. A column or a string called temp elsewhere is not (a word TEMP alone is no
 * statement's).
 */
export function mayNameTempSchema(sql: string): boolean {
  let before: Token | null = null;
  let schema = false; // the token before was temp, not after CREATE: a schema if a dot follows
  return scanTokens(sql, (token) => {
    if (schema && token.kind === 'other' && token.value === '.') return true;
    schema = false;
    if (token.value === 'temp' || token.value === 'temporary') {
      if (token.kind === 'name') return true;
      if (token.kind === 'word' && before !== null && before.kind === 'word' && before.value === 'create') return true;
      schema = token.value === 'temp';
    }
    before = token;
    return false;
  });
}

/** True when `sql` holds a bare word, a quoted name or a string (as SQLite takes one for a name: PRAGMA 'x') among `names` (lower-case). */
export function namesAny(sql: string, names: ReadonlySet<string>): boolean {
  return scanTokens(sql, (token) => token.kind !== 'other' && names.has(token.value));
}

/** True when `sql` may call a function among `names` (lower-case): such a word or quoted name with `(` as the next token. */
export function callsAny(sql: string, names: ReadonlySet<string>): boolean {
  let named = false;
  return scanTokens(sql, (token) => {
    if (named && token.kind === 'other' && token.value === '(') return true;
    named = (token.kind === 'word' || token.kind === 'name') && names.has(token.value);
    return false;
  });
}
