// Without a TTY the engine multiplexes stdout and stderr into frames: a 8-byte header
// (stream type, 3 zero bytes, big-endian payload length) then the payload. Frames split freely
// across chunks, so we buffer until a whole frame is there.
import { Transform, type TransformCallback } from 'node:stream';

const HEADER = 8;

/**
 * Turns multiplexed log frames into plain text (stdout and stderr interleaved as they came).
 * A truncated last frame (the stream was cut) is dropped rather than shown as garbage.
 */
export class LogDemuxer extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  /** Set when the first bytes are not a frame header (a TTY container): pass everything through. */
  private raw = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.raw) {
      callback(null, chunk);
      return;
    }
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= HEADER) {
      const type = this.pending[0] ?? 0;
      if (type > 2 || this.pending[1] !== 0 || this.pending[2] !== 0 || this.pending[3] !== 0) {
        this.raw = true;
        this.push(this.pending);
        this.pending = Buffer.alloc(0);
        break;
      }
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < HEADER + size) break;
      this.push(this.pending.subarray(HEADER, HEADER + size));
      this.pending = this.pending.subarray(HEADER + size);
    }
    callback();
  }
}
