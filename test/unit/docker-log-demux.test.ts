import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LogDemuxer } from '../../src/docker/log-demux.js';

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

async function text(chunks: Buffer[]): Promise<string> {
  let out = '';
  for await (const chunk of Readable.from(chunks).pipe(new LogDemuxer())) out += String(chunk);
  return out;
}

describe('LogDemuxer', () => {
  it('interleaves stdout and stderr payloads without the frame headers', async () => {
    expect(await text([Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err 1\n'), frame(1, 'out 2\n')])])).toBe('out 1\nerr 1\nout 2\n');
  });

  it('reassembles frames split anywhere, even inside the header', async () => {
    const all = Buffer.concat([frame(1, 'hello '), frame(2, 'world\n')]);
    const pieces = [all.subarray(0, 3), all.subarray(3, 10), all.subarray(10, 17), all.subarray(17)];
    expect(await text(pieces)).toBe('hello world\n');
  });

  it('drops a truncated last frame', async () => {
    const cut = frame(1, 'complete\n');
    expect(await text([cut, frame(1, 'partial line').subarray(0, 12)])).toBe('complete\n');
  });

  it('passes raw text through (a TTY container has no frames)', async () => {
    expect(await text([Buffer.from('plain tty output\n')])).toBe('plain tty output\n');
  });
});
