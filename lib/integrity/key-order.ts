/**
 * integrity/key-order.ts — how SQLite orders the keys of an index b-tree, read from the schema,
 * so level 2 can check key order without false alarms.
 *
 * An index key is a record: the indexed columns, then the rowid (or the primary key of a
 * WITHOUT ROWID table), compared column by column; a column compares with its collation and
 * direction: explicit in CREATE INDEX (`col COLLATE NOCASE DESC`), else the collation of the
 * table column's declaration, else BINARY, ascending. The trailing columns are BINARY ascending.
 *
 * Only what is read with certainty is used. An index or table whose SQL cannot be read that far
 * (expressions in the column list, an unknown collation, a column declaration with CHECK,
 * DEFAULT, REFERENCES or a generated expression where a COLLATE could hide, NOCASE or RTRIM in
 * a UTF-16 database, auto-indexes and WITHOUT ROWID tables when COLLATE or DESC appears at all)
 * gets null: its key order is not checked (the README lists this).
 */
export type Collation = 'binary' | 'nocase' | 'rtrim';

export interface ColumnOrder {
  collation: Collation;
  desc: boolean;
}

export interface SchemaEntry {
  type: string;
  name: string;
  tblName: string;
  sql: string | null;
}

const SPECIAL = /\bCOLLATE\b|\bDESC\b/i;
const IDENT = String.raw`(?:"(?:[^"]|"")+"|\[[^\]]+\]|` + '`(?:[^`]|``)+`' + String.raw`|[A-Za-z_][A-Za-z0-9_$]*)`;

function unquote(id: string): string {
  if (id.startsWith('"')) return id.slice(1, -1).replace(/""/g, '"');
  if (id.startsWith('`')) return id.slice(1, -1).replace(/``/g, '`');
  if (id.startsWith('[')) return id.slice(1, -1);
  return id;
}

/** Splits at commas outside parentheses and quotes; null when the quoting does not close. */
function splitTopLevel(body: string): string[] | null {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '[') quote = ']';
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  if (quote !== null || depth !== 0) return null;
  parts.push(body.slice(start));
  return parts;
}

/** The text between the first '(' and its matching ')'. */
function parenthesized(sql: string): string | null {
  const open = sql.indexOf('(');
  if (open < 0) return null;
  let depth = 0;
  let quote: string | null = null;
  for (let i = open; i < sql.length; i++) {
    const c = sql[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '[') quote = ']';
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return sql.slice(open + 1, i);
  }
  return null;
}

function collationOf(name: string): Collation | null {
  const n = name.toLowerCase();
  return n === 'binary' || n === 'nocase' || n === 'rtrim' ? n : null;
}

/** The declared collation of `column` in a CREATE TABLE statement; null when not certain. */
function tableColumnCollation(tableSql: string, column: string): Collation | null {
  if (!/\bCOLLATE\b/i.test(tableSql)) return 'binary';
  const body = parenthesized(tableSql);
  const defs = body === null ? null : splitTopLevel(body);
  if (defs === null) return null;
  const lead = new RegExp(`^\\s*(${IDENT})`);
  for (const def of defs) {
    const m = lead.exec(def);
    if (m === null) return null;
    const name = unquote(m[1]!);
    if (/^(CONSTRAINT|PRIMARY|UNIQUE|CHECK|FOREIGN)$/i.test(name)) continue;
    if (name.toLowerCase() !== column.toLowerCase()) continue;
    if (/\b(CHECK|DEFAULT|REFERENCES|GENERATED|AS)\b/i.test(def.slice(m[0].length))) return null;
    const c = /\bCOLLATE\s+("?)([A-Za-z_]+)\1/i.exec(def);
    return c === null ? 'binary' : collationOf(c[2]!);
  }
  return null;
}

/**
 * The order of the leading key columns of the b-tree of `entry` (an index, or a WITHOUT ROWID
 * table); [] means every column BINARY ascending; null: not known for certain, do not check.
 */
export function indexKeyOrder(entry: SchemaEntry, all: readonly SchemaEntry[], encoding: number): ColumnOrder[] | null {
  const table = entry.type === 'index' ? all.find((r) => r.type === 'table' && r.name.toLowerCase() === entry.tblName.toLowerCase()) : entry;
  if (table === undefined || table.sql === null) return null;
  if (entry.type !== 'index' || entry.sql === null) return SPECIAL.test(table.sql) ? null : [];
  if (!SPECIAL.test(entry.sql) && !SPECIAL.test(table.sql)) return [];
  const m = new RegExp(String.raw`^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:${IDENT}\s*\.\s*)?${IDENT}\s+ON\s+${IDENT}\s*\(`, 'i').exec(entry.sql);
  const body = m === null ? null : parenthesized(entry.sql.slice(m[0].length - 1));
  const items = body === null ? null : splitTopLevel(body);
  if (items === null) return null;
  const item = new RegExp(String.raw`^\s*(${IDENT})(?:\s+COLLATE\s+("?)([A-Za-z_]+)\2)?(?:\s+(ASC|DESC))?\s*$`, 'i');
  const out: ColumnOrder[] = [];
  for (const it of items) {
    const c = item.exec(it);
    if (c === null) return null; // an expression: its collation is not read here
    const collation = c[3] !== undefined ? collationOf(c[3]) : tableColumnCollation(table.sql, unquote(c[1]!));
    if (collation === null) return null;
    if (collation !== 'binary' && encoding !== 1) return null;
    out.push({ collation, desc: (c[4] ?? '').toUpperCase() === 'DESC' });
  }
  return out;
}
