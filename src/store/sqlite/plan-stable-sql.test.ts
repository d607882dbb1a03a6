import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { planStableSql, preparePlanStable } from './plan-stable-sql.ts';

describe('plan-stable SQL', () => {
  it('writes every parameter as +param, whatever its form', () => {
    assert.equal(planStableSql('SELECT * FROM t WHERE a = ? AND b = ?2 AND c = @c AND d = :d AND e = $e LIMIT ? OFFSET @off'),
      'SELECT * FROM t WHERE a = +? AND b = +?2 AND c = +@c AND d = +:d AND e = +$e LIMIT +? OFFSET +@off');
    assert.equal(planStableSql("SELECT 1 WHERE x GLOB ? AND y IN (SELECT value FROM json_each(?))"),
      "SELECT 1 WHERE x GLOB +? AND y IN (SELECT value FROM json_each(+?))");
  });

  it('leaves strings, quoted names and parameters already written +param as they are', () => {
    const sql = `SELECT '?', 'it''s @x', "a?b", [c?d], json_extract(v, '$.a') FROM t WHERE x = +? AND y = + @y`;
    assert.equal(planStableSql(sql), sql);
    // A comment (an apostrophe in one, say) is skipped whole: what follows is read as SQL again.
    assert.equal(planStableSql("SELECT ? -- the job's id, '?'\n, '?', /* it's ? */ ?"), "SELECT +? -- the job's id, '?'\n, '?', /* it's ? */ +?");
    assert.equal(planStableSql(planStableSql('SELECT ? LIMIT ?')), 'SELECT +? LIMIT +?');
  });

  it('gives the same answers as bare parameters: unary plus keeps every type and leaves no affinity, as a bare parameter has none', () => {
    const setUp = (db: Database.Database) => {
      db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, txt TEXT, num REAL, b BLOB); INSERT INTO t VALUES (1, '10', 2.5, x'00ff'), (2, 'abc', 3, NULL), (3, '9', 10, NULL), (4, '2.9', 1, NULL)");
      return db;
    };
    const plain = setUp(new Database(':memory:'));
    const stable = setUp(preparePlanStable(new Database(':memory:')));
    assert.equal(stable.prepare('SELECT ?').source, 'SELECT +?');
    const cases: [string, unknown[]][] = [
      ['SELECT ? AS a, ? AS b, ? AS c, ? AS d, typeof(?) AS e, typeof(?) AS f', ['x', 7, null, Buffer.from([1, 2]), 7, 2.5]],
      // Columns of each affinity compared with parameters of other types.
      ['SELECT id FROM t WHERE txt = ? ORDER BY id', ['10']],
      ['SELECT id FROM t WHERE txt = ? ORDER BY id', [10]],
      ['SELECT id FROM t WHERE txt = ? ORDER BY id', [2.9]],
      ['SELECT id FROM t WHERE num > ? ORDER BY id', ['2.9']],
      ['SELECT id FROM t WHERE num = ? ORDER BY id', [3n]],
      ['SELECT id FROM t WHERE b = ? ORDER BY id', [Buffer.from([0, 255])]],
      ['SELECT id FROM t ORDER BY id LIMIT ? OFFSET ?', [2, 1]],
      ['SELECT id FROM t ORDER BY id LIMIT ?', [-1]],
      ['SELECT id FROM t WHERE txt GLOB ? ORDER BY id', ['[0-9]*']],
      ['SELECT id FROM t WHERE txt LIKE ? ORDER BY id', ['A%']],
      ['SELECT ? || ?, ? + ?, ? = ?', ['1', 2, '3', 4, '5', 5]],
    ];
    for (const [sql, args] of cases) {
      assert.deepEqual(stable.prepare(sql).raw().all(...args), plain.prepare(sql).raw().all(...args), sql);
    }
    plain.close();
    stable.close();
  });

  it('keeps the index a query names: an equality on a parameter still searches it', () => {
    const db = preparePlanStable(new Database(':memory:'));
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, j TEXT, s TEXT, r TEXT); CREATE INDEX t_q ON t (j, id) WHERE s = 'q'; CREATE INDEX t_r ON t (id) WHERE s = 'q' AND r IS NOT NULL");
    const plan = db.prepare("EXPLAIN QUERY PLAN SELECT id FROM t WHERE j = ? AND s = 'q' AND r IS NULL ORDER BY id LIMIT ?").all('a', 1) as { detail: string }[];
    assert.match(plan.map((p) => p.detail).join(' '), /SEARCH t USING (COVERING )?INDEX t_q \(j=\?\)/);
    db.close();
  });
});
