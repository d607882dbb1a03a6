/**
 * Rules of the sources that a compiler does not check: every exported declaration has a doc
 * comment (so the API reference writes itself), and no product text (code, comments, docs,
 * help) speaks in the team's internal labels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Files under `dir` that `keep` accepts; installed packages (node_modules) are not ours. */
function files(dir: string, keep: (f: string) => boolean): string[] {
  return readdirSync(dir).filter((name) => name !== 'node_modules').flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path, keep) : keep(path) ? [path] : [];
  });
}

const sources = files(join(root, 'src'), (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
const srcTests = files(join(root, 'src'), (f) => f.endsWith('.test.ts'));

/** Exported declarations of a file that have no JSDoc comment. */
function undocumented(path: string): string[] {
  const sf = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const missing: string[] = [];
  const hasDoc = (node: ts.Node) => ts.getJSDocCommentsAndTags(node).length > 0;
  const exported = (node: ts.Node) => ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  for (const stmt of sf.statements) {
    if (!exported(stmt)) continue;
    if (ts.isVariableStatement(stmt)) {
      if (!hasDoc(stmt)) missing.push(stmt.declarationList.declarations.map((d) => d.name.getText(sf)).join(', '));
      continue;
    }
    const name = (stmt as ts.DeclarationStatement).name?.getText(sf) ?? 'default';
    if (!hasDoc(stmt)) missing.push(name);
  }
  return missing;
}

test('every exported declaration in src/ has a doc comment', () => {
  const missing = sources.flatMap((f) => undocumented(f).map((name) => `${relative(root, f)}: ${name}`));
  assert.deepEqual(missing, []);
});

/** The fuzz suite: its random generator takes a seed (fast-check's word, printed so that a run can be replayed). */
const randomSeeded = /[\\/]test[\\/](e2e[\\/]fuzz\.test|support[\\/]fuzz-[a-z-]+(\.test)?)\.ts$/;

test('product text does not speak in internal labels ("seed 001", "issue 4")', () => {
  const product = [
    ...sources, ...srcTests, join(root, 'README.md'), ...files(join(root, 'docs'), (f) => f.endsWith('.md')),
    ...files(join(root, 'examples'), () => true), join(root, 'bin/crowdcompute.js'),
    ...files(join(root, 'test'), (f) => f.endsWith('.ts') && !f.endsWith('source-hygiene.test.ts')),
    ...files(join(root, 'bench'), () => true), ...files(join(root, 'scripts'), () => true),
    ...files(join(root, 'deploy'), () => true),
  ];
  const offenders = product.flatMap((f) => readFileSync(f, 'utf8').split('\n')
    .map((line, i) => ({ line, at: `${relative(root, f)}:${i + 1}` }))
    .filter(({ line }) => /\bissue \d|\bissues? ?#\d/i.test(line) || (/\bseeds?\b/i.test(line) && !randomSeeded.test(f)))
    .map(({ at, line }) => `${at}: ${line.trim().slice(0, 120)}`));
  assert.deepEqual(offenders, []);
});
