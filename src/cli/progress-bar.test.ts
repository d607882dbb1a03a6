import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { ProgressBar, type ProgressStream } from './progress-bar.ts';

/** A stream that keeps what is written; a terminal of 100 columns when `tty`. */
function fakeStream(tty: boolean): { stream: ProgressStream; text: () => string } {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, done) { text += String(chunk); done(); } }) as Writable & { isTTY?: boolean; columns?: number };
  if (tty) { stream.isTTY = true; stream.columns = 100; }
  return { stream, text: () => text };
}

test('elsewhere than on a terminal: a line at every tenth, and a last line that keeps "N failed"', () => {
  const { stream, text } = fakeStream(false);
  const bar = new ProgressBar('job 1234abcd', stream);
  for (let done = 0; done <= 95; done++) bar.update(done, 100, done >= 50 ? '1 failed' : '');
  // The final update before done() (what `map` does with the outcome's counts) omits nothing.
  bar.update(100, 100, '2 failed');
  bar.done('job finished');
  const lines = text().trimEnd().split('\n');
  assert.equal(lines.filter((l) => l.startsWith('job 1234abcd')).length, 11, 'one line per tenth from 0% to 100%');
  assert.match(lines[0], /^job 1234abcd 0% \(0\/100\) \d+\.\ds$/);
  assert.match(lines[5], /^job 1234abcd 50% \(50\/100\) \d+\.\ds 1 failed$/);
  assert.match(lines.at(-2)!, /^job 1234abcd 100% \(100\/100\) \d+\.\ds 2 failed$/);
  assert.equal(lines.at(-1), 'job finished');
});

test('the text after the counts stays when an update gives none, and done() draws the last state once', () => {
  const { stream, text } = fakeStream(false);
  const bar = new ProgressBar('job x', stream);
  bar.update(9, 10, '1 failed');
  bar.update(10, 10);
  bar.done();
  bar.done('ignored: already done');
  const lines = text().trimEnd().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[1], /^job x 100% \(10\/10\) \d+\.\ds 1 failed$/);
});

test('a final state that was not printed yet gets its own line', () => {
  const { stream, text } = fakeStream(false);
  const bar = new ProgressBar('job y', stream);
  bar.update(10, 10);
  bar.update(10, 10, '3 failed');
  bar.done();
  const lines = text().trimEnd().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[1], /3 failed$/);
});

test('on a terminal: one redrawn line with a bar, ended by done() with the final counts and "N failed"', () => {
  const { stream, text } = fakeStream(true);
  const bar = new ProgressBar('job z', stream);
  bar.update(0, 4);
  bar.update(2, 4, '1 failed');
  bar.update(4, 4, '1 failed');
  bar.done('all done');
  const out = text();
  const lastDraw = out.slice(0, out.lastIndexOf('\nall done')).split(/\r|\x1b\[\d*G/).at(-1)!;
  assert.match(lastDraw, /job z █+ 100% 4\/4 \d+\.\ds 1 failed/);
  assert.ok(out.endsWith('\nall done\n'));
  assert.ok(!/\n.*job z/.test(out.slice(0, out.lastIndexOf('job z'))), 'the bar stays on one line until it is done');
});
