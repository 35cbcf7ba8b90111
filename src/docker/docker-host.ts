// Where the engine listens, from a DOCKER_HOST-style value (`--docker` / DOCKER_HOST).

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
export const DEFAULT_TCP_PORT = 2375;

export interface DockerConnection {
  socketPath?: string;
  host?: string;
  port?: number;
}

/**
 * `unix:///path`, a bare absolute socket path, or `tcp://host[:port]` (plain HTTP: TLS client
 * certificates are not supported). Empty or undefined means the default socket.
 */
export function parseDockerHost(value: string | undefined): DockerConnection {
  const v = value?.trim() ?? '';
  if (v === '') return { socketPath: DEFAULT_DOCKER_SOCKET };
  if (v.startsWith('/')) return { socketPath: v };
  if (v.startsWith('unix://')) {
    const path = v.slice('unix://'.length);
    if (!path.startsWith('/')) throw new Error(`DOCKER_HOST "${v}" needs an absolute socket path (unix:///var/run/docker.sock)`);
    return { socketPath: path };
  }
  if (v.startsWith('tcp://') || v.startsWith('http://')) {
    let url: URL;
    try {
      url = new URL(v.replace(/^tcp:/, 'http:'));
    } catch {
      throw new Error(`DOCKER_HOST "${v}" is not a valid tcp://host:port address`);
    }
    if (url.hostname === '') throw new Error(`DOCKER_HOST "${v}" has no host`);
    return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? DEFAULT_TCP_PORT : Number(url.port) };
  }
  throw new Error(`unsupported DOCKER_HOST "${v}": use unix:///path/to/docker.sock or tcp://host:port`);
}
