/**
 * SQL text rewritten so that a prepared statement keeps its plan across executions.
 *
 * SQLite's planner reads the value bound to a parameter in several places: a `LIMIT` given as
 * a parameter, the pattern of a `GLOB` or `LIKE`, a `col = ?` weighed against the conditions
 * of partial indexes (the tasks table has several). When it does, it marks the statement to be
 * compiled again whenever that parameter is bound — and better-sqlite3 binds every parameter on
 * every run, so such a statement is parsed and planned anew each time. Measured with callgrind
 * on the query that claims a job's tasks: about 210,000 instructions per run, 72% of them the
 * re-preparation, against about 40,000 once it is gone; for a one-task claim, that was most of
 * the claim's cost.
 *
 * SQLite has a switch for this (SQLITE_DBCONFIG_ENABLE_QPSG, "query planner stability"), but
 * better-sqlite3 does not expose it. A parameter written as `+?` is the same value (unary plus
 * is a no-op on every type, and leaves no affinity, as a bare parameter has none), but it is an
 * expression, not a parameter, to the planner: the plan is made once, without its value, as
 * the statements here are written to be (they name the partial index conditions they mean to
 * use as literals). The rewrite runs on every statement a store connection prepares, so a new
 * statement cannot bring the cost back.
 */

/**
 * A single-quoted string, a double-quoted or bracketed identifier, a comment (skipped as they
 * are), or a parameter as SQLite writes it (`?`, `?1`, `@name`, `:name`, `$name`) with what
 * precedes it.
 */
const TOKEN = /'(?:[^']|'')*'|"(?:[^"]|"")*"|\[[^\]]*\]|--[^\n]*|\/\*[\s\S]*?\*\/|(\+\s*)?(\?\d*|[@:$][A-Za-z_][A-Za-z0-9_]*)/g;

/** `sql` with every parameter written `+param` (see the file's comment). */
export function planStableSql(sql: string): string {
  return sql.replace(TOKEN, (match: string, plus: string | undefined, param: string | undefined) =>
    param === undefined || plus !== undefined ? match : `+${param}`);
}

/** Minimal shape of a better-sqlite3 connection, for {@link preparePlanStable}. */
interface Preparing { prepare(sql: string): unknown }

/**
 * Make every statement this connection prepares from now on plan-stable (see the file's
 * comment). Done on the connection itself, so that statements added later are covered too.
 */
export function preparePlanStable<D extends Preparing>(db: D): D {
  const prepare = db.prepare.bind(db) as (sql: string) => unknown;
  (db as { prepare(sql: string): unknown }).prepare = (sql: string) => prepare(planStableSql(sql));
  return db;
}
