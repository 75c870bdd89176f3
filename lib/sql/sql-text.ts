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

/** SQLite's identifier characters (tokenize.c IdChar), past the first: letters, digits, `_`, `$`, any non-ASCII. */
const WORD = /[A-Za-z0-9_$\u0080-\uffff]+/y;
const SPACE = /[ \t\n\f\r]+/y;

/** The tokens of `sql` in order (comments and whitespace skipped). */
export function* sqlTokens(sql: string): Generator<Token> {
  let at = 0;
  while (at < sql.length) {
    const c = sql[at]!;
    SPACE.lastIndex = at;
    if (SPACE.test(sql)) {
      at = SPACE.lastIndex;
    } else if (c === '-' && sql[at + 1] === '-') {
      const eol = sql.indexOf('\n', at);
      at = eol < 0 ? sql.length : eol + 1;
    } else if (c === '/' && sql[at + 1] === '*') {
      const close = sql.indexOf('*/', at + 2);
      at = close < 0 ? sql.length : close + 2;
    } else if (c === "'" || c === '"' || c === '`' || c === '[') {
      const quote = c === '[' ? ']' : c;
      let value = '';
      let from = at + 1;
      for (;;) {
        const close = sql.indexOf(quote, from);
        if (close < 0) {
          value += sql.slice(from);
          at = sql.length;
          break;
        }
        value += sql.slice(from, close);
        if (quote !== ']' && sql[close + 1] === quote) {
          value += quote; // a doubled quote is one
          from = close + 2;
          continue;
        }
        at = close + 1;
        break;
      }
      yield { kind: c === "'" ? 'string' : 'name', value: value.toLowerCase() };
    } else {
      WORD.lastIndex = at;
      if (WORD.test(sql)) {
        yield { kind: 'word', value: sql.slice(at, WORD.lastIndex).toLowerCase() };
        at = WORD.lastIndex;
      } else {
        yield { kind: 'other', value: c };
        at++;
      }
    }
  }
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
  for (const token of sqlTokens(sql)) {
    if (token.kind === 'word') words.push(token.value.toUpperCase());
    else if (words.length === 0 && token.value === ';' && token.kind === 'other') continue; // an empty statement
    else break;
    if (words.length >= n) break;
  }
  return words;
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
  let candidate = false; // the previous token was temp/temporary not after CREATE
  for (const token of sqlTokens(sql)) {
    if (candidate && token.kind === 'other' && token.value === '.') return true;
    candidate = false;
    if (token.value === 'temp' || token.value === 'temporary') {
      if (token.kind === 'name') return true;
      if (token.kind === 'word' && before !== null && before.kind === 'word' && before.value === 'create') return true;
      candidate = token.value === 'temp';
    }
    before = token;
  }
  return false;
}

/** True when `sql` holds a bare word, a quoted name or a string (as SQLite takes one for a name: PRAGMA 'x') among `names` (lower-case). */
export function namesAny(sql: string, names: ReadonlySet<string>): boolean {
  for (const token of sqlTokens(sql)) {
    if (token.kind !== 'other' && names.has(token.value)) return true;
  }
  return false;
}
