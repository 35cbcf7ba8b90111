import { describe, expect, it } from 'vitest';
import { BerthError } from '../../controllers/ports/errors.js';
import { classifyDockerError, engineMessage, isNotModified, type DockerOperation } from '../../src/docker/classify-docker-error.js';

/** An error shaped like docker-modem's: "(HTTP code N) reason - message" plus statusCode and json. */
function engineError(statusCode: number, message: string, reason = 'unexpected', json = true): Error {
  return Object.assign(new Error(`(HTTP code ${statusCode}) ${reason} - ${message} `), {
    statusCode,
    reason,
    json: json ? { message } : null,
  });
}

function socketError(code: string): Error {
  return Object.assign(new Error(`connect ${code} /var/run/docker.sock`), { code });
}

describe('classifyDockerError', () => {
  it.each<[string, unknown, DockerOperation, string, string]>([
    ['a refused socket connection', socketError('ECONNREFUSED'), 'other', 'transient', 'DockerUnavailable'],
    ['a missing socket file', socketError('ENOENT'), 'create', 'transient', 'DockerUnavailable'],
    ['a reset connection during a pull', socketError('ECONNRESET'), 'pull', 'transient', 'DockerUnavailable'],
    ['a reset connection during a build', socketError('ECONNRESET'), 'build', 'transient', 'DockerUnavailable'],
    ['a missing container', engineError(404, 'No such container: abc', 'no such container'), 'other', 'waiting', 'NotFound'],
    ['a create with a missing image', engineError(404, 'No such image: app:1', 'no such container'), 'create', 'waiting', 'ImageNotFound'],
    ['a missing network', engineError(404, 'network berth not found', 'no such network'), 'create', 'waiting', 'NotFound'],
    ['a taken name', engineError(409, 'Conflict. The container name "/x" is already in use by container "ab".', 'conflict'), 'create', 'waiting', 'Conflict'],
    ['an invalid image reference on create', engineError(400, 'invalid reference format: repository name must be lowercase', 'bad parameter'), 'create', 'stalled', 'InvalidImageName'],
    ['an invalid image reference on pull', engineError(400, 'invalid reference format', 'unexpected', false), 'pull', 'stalled', 'InvalidImageName'],
    ['an unreachable registry', engineError(500, 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused', 'server error', false), 'pull', 'transient', 'ImagePullFailed'],
    ['a Dockerfile parse error', engineError(400, 'dockerfile parse error line 1: unknown instruction: FROMM', 'unexpected', false), 'build', 'stalled', 'BuildFailed'],
    ['a malformed create', engineError(400, 'invalid mount config for type "bind": bind source path does not exist: /nope', 'bad parameter'), 'create', 'stalled', 'InvalidContainerSpec'],
    ['an engine failure', engineError(500, 'driver failed programming external connectivity', 'server error'), 'other', 'transient', 'DockerError'],
    ['an aborted request', new DOMException('This operation was aborted', 'AbortError'), 'other', 'transient', 'Aborted'],
    ['a timed-out signal', new DOMException('The operation was aborted due to timeout', 'TimeoutError'), 'build', 'transient', 'Timeout'],
    ['a plain error', new Error('boom'), 'other', 'transient', 'DockerError'],
  ])('classifies %s', (_name, error, op, kind, reason) => {
    const classified = classifyDockerError(error, op);
    expect(classified).toBeInstanceOf(BerthError);
    expect({ kind: classified.kind, reason: classified.reason }).toEqual({ kind, reason });
    expect(classified.cause).toBe(error);
  });

  it('keeps the engine message without the docker-modem prefix', () => {
    expect(classifyDockerError(engineError(404, 'No such image: app:1', 'no such container'), 'create').message).toBe('No such image: app:1');
    expect(engineMessage(engineError(500, 'dial tcp: refused', 'server error', false))).toBe('dial tcp: refused');
  });

  it('passes a BerthError through unchanged', () => {
    const e = new BerthError('stalled', 'ForbiddenMount', 'no');
    expect(classifyDockerError(e, 'create')).toBe(e);
  });

  it('recognises 304 as "already in that state"', () => {
    expect(isNotModified(engineError(304, 'container already started', 'container already started'))).toBe(true);
    expect(isNotModified(engineError(404, 'No such container: x'))).toBe(false);
    expect(isNotModified(new Error('x'))).toBe(false);
  });
});
