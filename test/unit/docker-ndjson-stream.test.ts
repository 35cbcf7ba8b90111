import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { NdjsonSplitter, parseJsonLine, readNdjson } from '../../src/docker/ndjson-stream.js';

describe('NdjsonSplitter', () => {
  it('joins a line split across chunks and keeps the unfinished tail', () => {
    const s = new NdjsonSplitter();
    expect(s.push('{"a":1}\n{"b"')).toEqual(['{"a":1}']);
    expect(s.push(':2}\n{"c":3}')).toEqual(['{"b":2}']);
    expect(s.flush()).toEqual(['{"c":3}']);
    expect(s.flush()).toEqual([]);
  });

  it('returns several lines from one chunk, dropping blank lines and CR', () => {
    const s = new NdjsonSplitter();
    expect(s.push('{"a":1}\r\n\n  \n{"b":2}\n')).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('keeps a multi-byte character split between two chunks intact', () => {
    const s = new NdjsonSplitter();
    const bytes = Buffer.from('{"s":"é"}\n');
    const cut = bytes.indexOf(0xc3) + 1;
    expect(s.push(bytes.subarray(0, cut))).toEqual([]);
    expect(s.push(bytes.subarray(cut))).toEqual(['{"s":"é"}']);
  });
});

describe('parseJsonLine', () => {
  it.each([
    ['an object', '{"status":"ok"}', { status: 'ok' }],
    ['not JSON', 'Step 1/2 : FROM scratch', undefined],
    ['truncated JSON', '{"status":', undefined],
    ['an array', '[1,2]', undefined],
    ['a bare value', '42', undefined],
  ])('parses %s without throwing', (_name, line, expected) => {
    expect(parseJsonLine(line)).toEqual(expected);
  });
});

describe('readNdjson', () => {
  it('hands every line over, a non-JSON one as raw text, and resolves at the end', async () => {
    const seen: [string, unknown][] = [];
    await readNdjson(Readable.from(['{"a":1}\nnot json\n{"b"', ':2}']), (raw, parsed) => seen.push([raw, parsed]));
    expect(seen).toEqual([
      ['{"a":1}', { a: 1 }],
      ['not json', undefined],
      ['{"b":2}', { b: 2 }],
    ]);
  });

  it('rejects with the stream error', async () => {
    const stream = new PassThrough();
    const done = readNdjson(stream, () => undefined);
    stream.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    await expect(done).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('rejects DockerUnavailable when the stream closes before its end', async () => {
    const stream = new PassThrough();
    const done = readNdjson(stream, () => undefined);
    stream.write('{"a":1}\n');
    stream.destroy();
    await expect(done).rejects.toMatchObject({ reason: 'DockerUnavailable', kind: 'transient' });
  });

  it('destroys the stream and rejects when the signal aborts', async () => {
    const stream = new PassThrough();
    const ac = new AbortController();
    const done = readNdjson(stream, () => undefined, ac.signal);
    ac.abort();
    await expect(done).rejects.toMatchObject({ name: 'AbortError' });
    expect(stream.destroyed).toBe(true);
  });

  it('stops and rejects when the line handler throws', async () => {
    const stream = new PassThrough();
    const done = readNdjson(stream, () => {
      throw new Error('handler failed');
    });
    stream.write('{"a":1}\n');
    await expect(done).rejects.toThrow('handler failed');
    expect(stream.destroyed).toBe(true);
  });
});
