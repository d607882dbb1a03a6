import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameBatcher, decodeFrame, encodeFrame } from './framing.ts';

test('messages of one turn leave as one frame; a lone message as a plain object', async () => {
  const frames: string[] = [];
  const b = new FrameBatcher({ write: (f) => frames.push(f) });
  b.push({ type: 'a' });
  b.push({ type: 'b' });
  await new Promise((r) => setImmediate(r));
  b.push({ type: 'c' });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(frames, ['[{"type":"a"},{"type":"b"}]', '{"type":"c"}']);
  assert.deepEqual(decodeFrame(frames[0]), [{ type: 'a' }, { type: 'b' }]);
  assert.deepEqual(decodeFrame(frames[1]), [{ type: 'c' }]);
  assert.throws(() => decodeFrame('{'), /CC_ERR_BAD_JSON/);
});

test('a frame is cut before it grows past its limit', () => {
  const frames: string[] = [];
  const b = new FrameBatcher({ write: (f) => frames.push(f), maxFrameChars: 30, schedule: () => {} });
  for (const type of ['aaaaaaaaaa', 'bbbbbbbbbb', 'cccccccccc']) b.push({ type });
  b.flush();
  assert.equal(frames.length, 3);
  assert.equal(encodeFrame(['1']), '1');
});
