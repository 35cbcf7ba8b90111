import { describe, it, expect } from 'vitest';
import { docker, IMAGES, testInstance } from './helpers/docker.js';

describe('the Docker engine used by the tests', () => {
  it('runs a FROM-scratch busybox image built offline', async () => {
    const name = testInstance('smoke');
    try {
      await docker('run', '-d', '--name', name, '--label', `dev.berth.instance=${name}`, IMAGES.httpdV1);
      const out = await docker('exec', name, 'wget', '-qO-', 'http://127.0.0.1/');
      expect(out).toBe('hello v1');
    } finally {
      await docker('rm', '-f', name).catch(() => undefined);
    }
  });
});
