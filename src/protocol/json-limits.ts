/**
 * How deep JSON may nest wherever it arrives. Parsing deep JSON is safe (V8's parser does not
 * recurse), but writing it back out is not: `JSON.stringify`, the database drivers and any
 * code that walks a value recurse once per level, so a 10 KB frame of 5,000 nested arrays can
 * throw a stack overflow far from where it arrived, in a loop that carries everyone's work.
 * Every frame and request body is therefore measured as it arrives: a message nested too deep
 * is refused alone (the others of its frame go on), a body whole, with an error naming the limit.
 */
import { CrowdComputeError } from './errors.ts';

/**
 * Most levels of arrays and objects inside one another in a value a peer supplies: a task's
 * input or result, a map argument, metadata, progress data, an artifact, a checkpoint.
 */
export const MAX_VALUE_DEPTH = 64;

/**
 * Most levels in a whole message or request body: a value's own levels plus the envelope around
 * it (the message, its job, its list of tasks or results, the entry).
 */
export const MAX_DOCUMENT_DEPTH = MAX_VALUE_DEPTH + 16;

/**
 * Where the string that opens at `start` (a quote) ends: its closing quote, the next one not
 * escaped by an odd run of backslashes; -1 when it never closes.
 */
function stringEnd(text: string, start: number): number {
  let j = start + 1;
  for (;;) {
    j = text.indexOf('"', j);
    if (j < 0) return -1;
    let k = j - 1;
    while (text.charCodeAt(k) === 92 /* \ */) k--;
    if ((j - 1 - k) % 2 === 0) return j;
    j++;
  }
}

/**
 * True when the JSON text nests arrays and objects more than `max` levels deep. One pass over
 * the text, without parsing it: strings are skipped whole (brackets inside them do not count).
 * Text that is not valid JSON gives some answer; parsing it fails anyway.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  const n = text.length;
  // Nesting deeper than `max` takes more than `max` opening brackets.
  if (n <= max) return false;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      i = stringEnd(text, i);
      if (i < 0) return false;
    } else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > max) return true;
    } else if (c === 93 /* ] */ || c === 125 /* } */) {
      depth--;
    }
  }
  return false;
}

/**
 * The messages of a frame that nest deeper than `max` levels, by their index in the frame (a
 * frame is one message, or a JSON array of them whose own level does not count). One pass, as
 * {@link jsonDepthExceeds}; empty when none does.
 */
export function messagesTooDeep(text: string, max: number): number[] {
  const n = text.length;
  if (n <= max) return [];
  const out: number[] = [];
  let i = 0;
  while (i < n && text.charCodeAt(i) <= 32) i++;
  // In an array frame the messages begin one level down, and commas at that level part them.
  const base = text.charCodeAt(i) === 91 /* [ */ ? 1 : 0;
  let depth = 0;
  let index = 0;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      i = stringEnd(text, i);
      if (i < 0) return out;
    } else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth - base > max && out[out.length - 1] !== index) out.push(index);
    } else if (c === 93 /* ] */ || c === 125 /* } */) {
      depth--;
    } else if (c === 44 /* , */ && base === 1 && depth === 1) {
      index++;
    }
  }
  return out;
}

/** The error for JSON nested too deep: what held it, and the limit. */
export function tooDeepError(what: string, max: number): CrowdComputeError {
  return new CrowdComputeError('CC_ERR_TOO_DEEP',
    `${what} nests JSON more than ${max} levels deep (arrays and objects inside one another); values may nest at most ${MAX_VALUE_DEPTH} levels`,
    { limit: max });
}

/** Throw CC_ERR_TOO_DEEP when `text` (a request body) nests deeper than {@link MAX_DOCUMENT_DEPTH}. */
export function checkDocumentDepth(text: string, what: string): void {
  if (jsonDepthExceeds(text, MAX_DOCUMENT_DEPTH)) throw tooDeepError(what, MAX_DOCUMENT_DEPTH);
}
