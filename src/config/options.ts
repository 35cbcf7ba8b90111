// Every operator option in one table: the flag, its BERTH_* variable, default and help. The
// CLI parser, --help and the README's flag table all come from here.

export interface OptionDef {
  flag: string;
  env: string;
  type: 'string' | 'list' | 'number';
  default?: string;
  description: string;
  /**
   * Which commands take it: every command that reads berth's files takes "files"; commands
   * that talk to Docker take "engine", to the running operator "admin"; "run" is berth run's own.
   */
  scope: 'files' | 'engine' | 'admin' | 'run';
}

export const OPTIONS = [
  { flag: 'manifests', env: 'BERTH_MANIFESTS', type: 'string', default: './manifests', scope: 'files', description: 'Folder of manifests to watch (recursively).' },
  { flag: 'status', env: 'BERTH_STATUS', type: 'string', default: './status', scope: 'files', description: 'Folder berth writes status files into.' },
  { flag: 'state', env: 'BERTH_STATE', type: 'string', default: './.berth', scope: 'files', description: 'Folder for berth\'s own state: state.json, keys, CA, certificates, build logs.' },
  { flag: 'http', env: 'BERTH_HTTP', type: 'string', default: '0.0.0.0:8080', scope: 'run', description: 'Public HTTP listener (the proxy, ACME challenges, the webhook).' },
  { flag: 'https', env: 'BERTH_HTTPS', type: 'string', default: '0.0.0.0:8443', scope: 'run', description: 'Public HTTPS listener, opened when any route has TLS.' },
  { flag: 'admin', env: 'BERTH_ADMIN', type: 'string', default: '127.0.0.1:9090', scope: 'admin', description: 'Admin listener: /healthz, /metrics, /api/v1. Beyond loopback it requires BERTH_ADMIN_TOKEN.' },
  { flag: 'docker', env: 'DOCKER_HOST', type: 'string', scope: 'engine', description: 'Docker engine: unix:///path or tcp://host:port (default /var/run/docker.sock).' },
  { flag: 'instance', env: 'BERTH_INSTANCE', type: 'string', default: 'berth', scope: 'engine', description: 'Name prefix and label of everything this berth creates in Docker (its network too), so several can share an engine.' },
  { flag: 'build-concurrency', env: 'BERTH_BUILD_CONCURRENCY', type: 'number', default: '1', scope: 'run', description: 'Builds that may run at once.' },
  { flag: 'allow-host-path', env: 'BERTH_ALLOW_HOST_PATH', type: 'list', scope: 'files', description: 'Host folder under which hostPath volumes are allowed (repeat, or comma-separate in the variable). None by default.' },
  { flag: 'acme-email', env: 'BERTH_ACME_EMAIL', type: 'string', scope: 'run', description: 'Turns ACME on: account e-mail for certificates of public names.' },
  { flag: 'acme-directory', env: 'BERTH_ACME_DIRECTORY', type: 'string', default: 'https://acme-v02.api.letsencrypt.org/directory', scope: 'run', description: 'ACME directory URL (Let\'s Encrypt staging, Pebble, or a private CA).' },
  { flag: 'acme-ca-bundle', env: 'BERTH_ACME_CA_BUNDLE', type: 'string', scope: 'run', description: 'PEM file of CA certificates to trust for a private ACME server.' },
  { flag: 'resync', env: 'BERTH_RESYNC', type: 'string', default: '5m', scope: 'run', description: 'Periodic full resync of every app (jittered), the safety net for missed Docker events.' },
  { flag: 'log-level', env: 'BERTH_LOG_LEVEL', type: 'string', default: 'info', scope: 'files', description: 'trace, debug, info, warn, error or silent.' },
] as const satisfies readonly OptionDef[];

export type OptionFlag = (typeof OPTIONS)[number]['flag'];
