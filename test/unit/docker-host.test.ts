import { describe, expect, it } from 'vitest';
import { parseDockerHost } from '../../src/docker/docker-host.js';

describe('parseDockerHost', () => {
  it.each([
    ['unset', undefined, { socketPath: '/var/run/docker.sock' }],
    ['empty', '  ', { socketPath: '/var/run/docker.sock' }],
    ['a unix URL', 'unix:///run/user/1000/docker.sock', { socketPath: '/run/user/1000/docker.sock' }],
    ['a bare socket path', '/tmp/d.sock', { socketPath: '/tmp/d.sock' }],
    ['tcp with a port', 'tcp://10.0.0.5:2376', { host: '10.0.0.5', port: 2376 }],
    ['tcp without a port', 'tcp://docker.lan', { host: 'docker.lan', port: 2375 }],
    ['tcp with IPv6', 'tcp://[::1]:2375', { host: '::1', port: 2375 }],
  ])('reads %s', (_name, value, expected) => {
    expect(parseDockerHost(value)).toEqual(expected);
  });

  it.each([['ssh://pi@host'], ['npipe:////./pipe/docker_engine'], ['unix://relative.sock'], ['docker.sock']])('refuses %s', (value) => {
    expect(() => parseDockerHost(value)).toThrow(/DOCKER_HOST/);
  });
});
