// Resolve a command's options: flag, else BERTH_* variable, else default. Usage errors are
// UsageError (exit code 2) with a message that says what to do.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolve } from 'node:path';
import { isIP } from 'node:net';
import { OPTIONS, type OptionDef } from './options.js';
import { parseDuration } from '../api/quantities.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface FilesConfig {
  manifests: string;
  status: string;
  state: string;
  allowHostPath: string[];
  logLevel: string;
}

export interface Address {
  host: string;
  port: number;
}

export interface RunConfig extends FilesConfig {
  http: Address;
  https: Address;
  admin: Address;
  docker: string | undefined;
  instance: string;
  buildConcurrency: number;
  acme: { email: string; directory: string; caBundle: string | undefined } | undefined;
  resyncMs: number;
  adminToken: string | undefined;
  webhookSecret: string | undefined;
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface ParsedCommand {
  values: Values;
  positionals: string[];
}

/** Parse argv for a command that takes the option scopes given plus its own flags. */
export function parseCommand(
  argv: string[],
  scopes: OptionDef['scope'][],
  own: NonNullable<ParseArgsConfig['options']> = {},
  allowPositionals = false,
): ParsedCommand {
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' }, ...own };
  for (const o of OPTIONS) if (scopes.includes(o.scope)) options[o.flag] = { type: 'string', multiple: o.type === 'list' };
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals, strict: true });
    return { values: values, positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/, ''));
  }
}

function raw(values: Values, o: OptionDef, env: NodeJS.ProcessEnv): string | string[] | undefined {
  const v = values[o.flag];
  if (v !== undefined) return o.type === 'list' ? (v as string[]).flatMap(splitList) : (v as string);
  const e = env[o.env];
  if (e !== undefined && e !== '') return o.type === 'list' ? splitList(e) : e;
  return o.default;
}

function splitList(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter(Boolean);
}

function get(values: Values, flag: string, env: NodeJS.ProcessEnv): string | undefined {
  const o = OPTIONS.find((x) => x.flag === flag)!;
  const v = raw(values, o, env);
  return Array.isArray(v) ? v.join(',') : v;
}

export function filesConfig(values: Values, env: NodeJS.ProcessEnv = process.env): FilesConfig {
  const o = OPTIONS.find((x) => x.flag === 'allow-host-path')!;
  const level = get(values, 'log-level', env)!;
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(level)) {
    throw new UsageError(`--log-level must be trace, debug, info, warn, error or silent (got ${JSON.stringify(level)})`);
  }
  return {
    manifests: resolve(get(values, 'manifests', env)!),
    status: resolve(get(values, 'status', env)!),
    state: resolve(get(values, 'state', env)!),
    allowHostPath: ((raw(values, o, env) as string[] | undefined) ?? []).map((p) => resolve(p)),
    logLevel: level,
  };
}

export function parseAddress(flag: string, text: string): Address {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]*)):([0-9]{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--${flag} must be HOST:PORT, e.g. 127.0.0.1:9090 (got ${JSON.stringify(text)})`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function engineConfig(values: Values, env: NodeJS.ProcessEnv = process.env): { docker: string | undefined; instance: string } {
  const instance = get(values, 'instance', env)!;
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(instance)) {
    throw new UsageError(`--instance must be 1-20 lower-case letters, digits or "-", starting with a letter (got ${JSON.stringify(instance)})`);
  }
  return { docker: get(values, 'docker', env), instance };
}

export function adminConfig(values: Values, env: NodeJS.ProcessEnv = process.env): { admin: Address; adminToken: string | undefined } {
  return { admin: parseAddress('admin', get(values, 'admin', env)!), adminToken: env.BERTH_ADMIN_TOKEN || undefined };
}

export function runConfig(values: Values, env: NodeJS.ProcessEnv = process.env): RunConfig {
  const files = filesConfig(values, env);
  const { instance, docker } = engineConfig(values, env);
  const concurrency = Number(get(values, 'build-concurrency', env));
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16) {
    throw new UsageError('--build-concurrency must be a whole number from 1 to 16');
  }
  let resyncMs: number;
  try {
    resyncMs = parseDuration(get(values, 'resync', env)!);
  } catch {
    throw new UsageError('--resync must be a duration such as 30s or 5m');
  }
  if (resyncMs < 1000) throw new UsageError('--resync must be at least 1s');
  const email = get(values, 'acme-email', env);
  const { admin, adminToken } = adminConfig(values, env);
  if (!isLoopback(admin.host) && !adminToken) {
    throw new UsageError(`--admin ${admin.host} is not a loopback address: set BERTH_ADMIN_TOKEN so the admin API is not open to the network`);
  }
  return {
    ...files,
    http: parseAddress('http', get(values, 'http', env)!),
    https: parseAddress('https', get(values, 'https', env)!),
    admin,
    docker,
    instance,
    buildConcurrency: concurrency,
    acme: email ? { email, directory: get(values, 'acme-directory', env)!, caBundle: get(values, 'acme-ca-bundle', env) } : undefined,
    resyncMs,
    adminToken,
    webhookSecret: env.BERTH_WEBHOOK_SECRET || undefined,
  };
}

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  // An IPv4 literal in 127/8, not any name that merely starts with "127." (a rebinding attacker's
  // own domain can be called 127.0.0.1.evil.example).
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}
