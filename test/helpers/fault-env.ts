// One berth instance of the reliability suite (test/faults/): its own instance label, folders,
// fixed loopback ports (so restarts and clients keep them), a secret canary, and "bystander"
// Docker objects without berth's labels that checkInvariants (./invariants.ts) proves intact.
// Runs the BUILT CLI (BerthProcess), against the shared engine or a private dockerd.
//
// Everything this file creates in Docker is labelled: berth's objects by their instance label,
// bystanders and test images by FAULT_LABEL=<instance>; destroy() removes only by those labels.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request, Agent, type IncomingHttpHeaders } from 'node:http';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { BerthProcess, appYaml, berthCli, makeDirs, readYaml, removeDirs, sleep, waitFor, type BerthDirs, type CliResult } from './berth-process.js';
import { IMAGES, testInstance } from './docker.js';
import { freePorts } from './pebble.js';
import type { AppStatusFile, Condition, OperatorStatusFile } from '../../src/api/types.generated.js';

const run = promisify(execFile);

/** Label of what the fault suite creates itself (bystanders, test images): never one of berth's. */
export const FAULT_LABEL = 'berth-faults.owner';

export interface FaultEnvOptions {
  /** berth flags after the defaults (`--resync 2s` unless `resync` says otherwise). */
  args?: string[];
  resync?: string;
  /** Extra environment for every start of berth. */
  env?: NodeJS.ProcessEnv;
  /** A private engine (`unix://…`); default: the shared one. */
  dockerHost?: string;
  /** What berth alone talks to (e.g. a slow proxy in front of the engine); default dockerHost. */
  berthDockerHost?: string;
  /** Create the bystander container/network/volume (default true). */
  bystanders?: boolean;
  /** Give the bystander container a restart policy (an engine restarted by the test restarts it itself: only its id is compared then). */
  bystanderRestart?: boolean;
}

export interface Bystanders {
  container: string;
  containerId: string;
  startedAt: string;
  /** Labels as created (the image's own labels included). */
  labels: Record<string, string>;
  /** The engine itself restarts it (test-driven daemon restarts): StartedAt is not compared. */
  restarts: boolean;
  network: string;
  networkId: string;
  volume: string;
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  ms: number;
}

const agent = new Agent({ keepAlive: false, maxSockets: Infinity });

export class FaultEnv {
  readonly instance: string;
  berth: BerthProcess | undefined;
  /** Every berth process this env ran (logs of killed ones included), and output of starts that died early. */
  readonly processes: BerthProcess[] = [];
  readonly deadStarts: string[] = [];
  /** A secret value that must never appear in any output of berth (see setCanary). */
  readonly canary = `canary-${randomBytes(12).toString('hex')}`;
  bystanders: Bystanders | undefined;
  readonly engine: Docker;
  private readonly args: string[];

  private constructor(
    readonly prefix: string,
    readonly dirs: BerthDirs,
    readonly httpPort: number,
    readonly httpsPort: number,
    readonly opts: FaultEnvOptions,
  ) {
    this.instance = testInstance(prefix);
    this.engine = opts.dockerHost ? new Docker({ socketPath: opts.dockerHost.replace(/^unix:\/\//, '') }) : new Docker();
    const berthDocker = opts.berthDockerHost ?? opts.dockerHost;
    this.args = ['--resync', opts.resync ?? '2s', ...(berthDocker ? ['--docker', berthDocker] : []), ...(opts.args ?? [])];
  }

  /** A new env (folders, ports, bystanders); berth is not started yet. */
  static async create(prefix: string, opts: FaultEnvOptions = {}): Promise<FaultEnv> {
    const [http, https] = (await freePorts(2)) as [number, number];
    const env = new FaultEnv(prefix, await makeDirs(`berth-${prefix}-`), http, https, opts);
    if (opts.bystanders !== false) await env.createBystanders();
    return env;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  /** The docker CLI against this env's engine (stdout trimmed). */
  async docker(...args: string[]): Promise<string> {
    const { stdout } = await run('docker', [...(this.opts.dockerHost ? ['-H', this.opts.dockerHost] : []), ...args], { maxBuffer: 64 << 20 });
    return stdout.trim();
  }

  /** More berth flags for the next starts (e.g. ACME settings once a test server knows the HTTP port). */
  addArgs(...args: string[]): void {
    this.args.push(...args);
  }

  /** Start berth (waits until its listeners are up). */
  async start(extraEnv: NodeJS.ProcessEnv = {}): Promise<BerthProcess> {
    const b = await BerthProcess.start(this.dirs, {
      instance: this.instance, args: this.args, env: { ...this.opts.env, ...extraEnv },
      http: `127.0.0.1:${this.httpPort}`, https: `127.0.0.1:${this.httpsPort}`,
    });
    this.berth = b;
    this.processes.push(b);
    return b;
  }

  async stop(): Promise<void> {
    await this.berth?.stop();
  }

  async restart(extraEnv: NodeJS.ProcessEnv = {}): Promise<BerthProcess> {
    await this.stop();
    return this.start(extraEnv);
  }

  /**
   * Start berth with BERTH_FAULT=`fault` armed. It may die before its listeners are up (a
   * write fault at start-up): then `berth` is undefined and its output is kept for the checks.
   */
  async startWithFault(fault: string): Promise<BerthProcess | undefined> {
    try {
      return await this.start({ BERTH_FAULT: fault });
    } catch (e) {
      const text = String((e as Error).message);
      if (!text.includes(`fault point ${fault.split('@')[0]!} reached`)) throw e;
      this.deadStarts.push(text);
      this.berth = undefined;
      return undefined;
    }
  }

  /** Waits until the running berth killed itself at `point` (SIGKILL), or throws. */
  async waitFaultKill(point: string, timeoutMs = 30_000): Promise<void> {
    const b = this.berth;
    if (!b) return;
    await waitFor(`berth to reach fault point ${point}`, () => !b.alive, timeoutMs, 20).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${b.logs().slice(-3000)}`);
    });
    if (b.proc.signalCode !== 'SIGKILL' || !b.logs().includes(`fault point ${point} reached`)) {
      throw new Error(`berth ended (${b.proc.signalCode ?? b.proc.exitCode}) without reaching ${point}:\n${b.logs().slice(-3000)}`);
    }
    this.berth = undefined;
  }

  async kill9(): Promise<void> {
    await this.berth?.kill9();
    this.berth = undefined;
  }

  /** All output of every berth process of this env. */
  allLogs(): string {
    return [...this.processes.map((p) => p.logs()), ...this.deadStarts].join('\n');
  }

  // ---- manifests and status ------------------------------------------------------------------

  /** The App manifest, written atomically (temp + rename) as `berth apply` would. */
  async writeApp(name: string, spec: string, file = `${name}.yaml`): Promise<void> {
    await this.writeManifest(file, appYaml(name, spec));
  }

  async writeManifest(file: string, body: string): Promise<void> {
    const tmp = join(this.dirs.manifests, `.${file.replace(/\//g, '_')}.${randomBytes(3).toString('hex')}.tmp`);
    await writeFile(tmp, body);
    await rename(tmp, join(this.dirs.manifests, file));
  }

  status(app: string): Promise<AppStatusFile | undefined> {
    return readYaml<AppStatusFile>(join(this.dirs.status, 'apps', `${app}.yaml`));
  }

  operator(): Promise<OperatorStatusFile | undefined> {
    return readYaml<OperatorStatusFile>(join(this.dirs.status, 'operator.yaml'));
  }

  async waitPhase(app: string, phase: string, timeoutMs = 30_000, extra?: (s: AppStatusFile) => boolean): Promise<AppStatusFile> {
    return waitFor(`${app} ${phase}`, async () => {
      const s = await this.status(app);
      return s?.status.phase === phase && (extra?.(s) ?? true) ? s : undefined;
    }, timeoutMs, 50).catch((e: unknown) => this.explain(e, app));
  }

  /**
   * Asleep: phase Sleeping and every container exited. `poke` (the app's host): if the app is
   * still Ready `pokeAfterMs` later, one request re-arms its idle timer — the workaround for idle
   * events berth drops while a resync runs (proved on its own in wake-sleep.test.ts), so that
   * scenarios about something else do not hang on it. Each poke is counted in lostIdles.
   */
  async waitAsleep(app: string, opts: { poke?: string; pokeAfterMs?: number; timeoutMs?: number } = {}): Promise<void> {
    const t0 = Date.now();
    let lastPoke = t0;
    for (;;) {
      const s = await this.status(app);
      const cs = await this.containers(app);
      if (s?.status.phase === 'Sleeping' && cs.length > 0 && cs.every((c) => c.State === 'exited')) return;
      if (Date.now() - t0 > (opts.timeoutMs ?? 45_000)) await this.explain(new Error(`${app} did not fall asleep`), app);
      if (opts.poke && s?.status.phase === 'Ready' && Date.now() - lastPoke > (opts.pokeAfterMs ?? 8000)) {
        this.lostIdles++;
        console.warn(`${app}: still Ready ${Date.now() - lastPoke} ms after its last request: idle event lost; poking it`);
        await this.call(opts.poke, '/').catch(() => undefined);
        lastPoke = Date.now();
      }
      await sleep(100);
    }
  }

  lostIdles = 0;

  /** Ready (phase and condition), optionally running `image`, with exactly `replicas` running containers of one spec. */
  async waitReady(app: string, opts: { image?: string; replicas?: number; timeoutMs?: number } = {}): Promise<AppStatusFile> {
    return waitFor(`${app} Ready${opts.image ? ` on ${opts.image}` : ''}`, async () => {
      const s = await this.status(app);
      if (s?.status.phase !== 'Ready' || condition(s, 'Ready')?.status !== 'True') return undefined;
      const cs = await this.containers(app);
      const running = cs.filter((c) => c.State === 'running');
      if (running.length !== (opts.replicas ?? 1) || cs.length !== running.length) return undefined;
      if (opts.image && running.some((c) => c.Image !== opts.image)) return undefined;
      return s;
    }, opts.timeoutMs ?? 45_000, 50).catch((e: unknown) => this.explain(e, app));
  }

  private async explain(e: unknown, app: string): Promise<never> {
    const s = await this.status(app);
    const cs = await this.containers(app).catch(() => []);
    throw new Error(`${String(e)}\n${app}: ${s?.status.phase} ${JSON.stringify(s?.status.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}: ${c.message}`))}\ncontainers: ${cs.map((c) => `${c.Names[0]} ${c.State} ${c.Image}`).join(', ')}\nberth alive: ${this.berth?.alive}\n${this.berth?.logs().slice(-2500) ?? ''}`);
  }

  /** `berth secret set app KEY=canary` (value on stdin, never on the command line). */
  async setCanary(app: string, key = 'CANARY'): Promise<void> {
    const r = await this.cli(['secret', 'set', app, `${key}=-`], this.canary);
    if (r.code !== 0) throw new Error(`berth secret set failed: ${r.stderr}`);
  }

  cli(args: string[], input?: string): Promise<CliResult> {
    return berthCli([...args, '--manifests', this.dirs.manifests, '--status', this.dirs.status, '--state', this.dirs.state], { env: this.opts.env, ...(input !== undefined ? { input } : {}) });
  }

  // ---- Docker ---------------------------------------------------------------------------------

  /** The instance's containers (all states), optionally of one app. */
  async containers(app?: string): Promise<Docker.ContainerInfo[]> {
    return this.engine.listContainers({ all: true, filters: { label: [`dev.berth.instance=${this.instance}`, ...(app ? [`dev.berth.app=${app}`] : [])] } });
  }

  inspect(id: string): Promise<Docker.ContainerInspectInfo> {
    return this.engine.getContainer(id).inspect();
  }

  /** Container events of the instance between two times (ms since the epoch); waits until `untilMs` has passed. */
  async events(sinceMs: number, untilMs: number, filters: string[] = []): Promise<{ action: string; name: string; app: string; at: number }[]> {
    const wait = untilMs - Date.now();
    if (wait > 0) await sleep(wait + 50);
    const out = await this.docker(
      'events', '--since', (sinceMs / 1000).toFixed(3), '--until', (untilMs / 1000).toFixed(3),
      '--filter', `label=dev.berth.instance=${this.instance}`, '--filter', 'type=container', ...filters.flatMap((f) => ['--filter', f]),
      '--format', '{{.Action}} {{.TimeNano}} {{index .Actor.Attributes "name"}} {{index .Actor.Attributes "dev.berth.app"}}',
    );
    return out.split('\n').filter(Boolean).map((l) => {
      const [action = '', nano = '0', name = '', app = ''] = l.split(' ');
      return { action, name, app, at: Number(BigInt(nano) / 1_000_000n) };
    });
  }

  /** Builds a busybox httpd image serving `body`, tagged `tag`, labelled as this env's. */
  async buildImage(tag: string, body: string): Promise<void> {
    const { mkdtemp, copyFile, chmod, mkdir, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'berth-fimg-'));
    try {
      await copyFile('/bin/busybox', join(dir, 'busybox'));
      await chmod(join(dir, 'busybox'), 0o755);
      await mkdir(join(dir, 'www'));
      await writeFile(join(dir, 'www', 'index.html'), body);
      await writeFile(join(dir, 'Dockerfile'), ['FROM scratch', 'COPY busybox /bin/busybox', 'COPY www /www', 'CMD ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]', ''].join('\n'));
      await this.docker('build', '-q', '--label', `${FAULT_LABEL}=${this.instance}`, '--label', 'dev.berth.test=1', '-t', tag, dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async createBystanders(): Promise<void> {
    const label = `${FAULT_LABEL}=${this.instance}`;
    // Named like berth's own objects (instance prefix), but without berth's labels: berth must go by labels only.
    const network = `${this.instance}-bystander-net`;
    const volume = `${this.instance}-bystander-vol`;
    const container = `${this.instance}-bystander`;
    const networkId = await this.docker('network', 'create', '--label', label, network);
    await this.docker('volume', 'create', '--label', label, volume);
    const restart = this.opts.bystanderRestart ? ['--restart', 'unless-stopped'] : [];
    const containerId = await this.docker('run', '-d', '--name', container, '--label', label, '--network', network, '-v', `${volume}:/data`, '--memory', '32m', '--init', ...restart, IMAGES.httpdV1);
    const info = await this.inspect(containerId);
    this.bystanders = { container, containerId, startedAt: info.State.StartedAt, labels: info.Config.Labels ?? {}, restarts: this.opts.bystanderRestart === true, network, networkId, volume };
  }

  // ---- HTTP -----------------------------------------------------------------------------------

  /** One request to berth's HTTP listener with a Host header. `from` picks the client's source address (127.0.0.x). */
  call(host: string, path = '/', opts: { method?: string; headers?: Record<string, string>; body?: Buffer; timeoutMs?: number; from?: string; port?: number } = {}): Promise<Reply> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = request({ host: '127.0.0.1', port: opts.port ?? this.httpPort, path, method: opts.method ?? 'GET', agent, headers: { host, ...opts.headers }, ...(opts.from ? { localAddress: opts.from } : {}) }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString(), ms: performance.now() - t0 }));
        res.on('error', reject);
      });
      req.setTimeout(opts.timeoutMs ?? 15_000, () => req.destroy(new Error(`${host}${path}: no answer within ${opts.timeoutMs ?? 15_000} ms`)));
      // A server refusing a large body answers and closes before reading it all: the answer counts.
      req.on('error', (e) => (answered ? undefined : setTimeout(() => reject(e), 300)));
      req.end(opts.body);
    });
  }

  async metrics(): Promise<string> {
    if (!this.berth) return '';
    return (await fetch(`${this.berth.adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  }

  /** Sum of a metric's samples whose labels contain `labels` (e.g. 'method="startContainer"'). */
  static metric(text: string, name: string, labels = ''): number {
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name) || line.startsWith('#')) continue;
      const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name || !(m[2] ?? '').includes(labels)) continue;
      sum += Number(m[3]);
    }
    return sum;
  }

  // ---- teardown -------------------------------------------------------------------------------

  /** Stops berth and removes everything of this env: berth's objects (instance label), bystanders and images (FAULT_LABEL), folders. */
  async destroy(): Promise<void> {
    for (const p of this.processes) await p.stop().catch(() => undefined);
    for (const label of [`dev.berth.instance=${this.instance}`, `${FAULT_LABEL}=${this.instance}`]) {
      const filter = `label=${label}`;
      const ids = (await this.docker('ps', '-aq', '--filter', filter).catch(() => '')).split('\n').filter(Boolean);
      if (ids.length) await this.docker('rm', '-f', ...ids).catch(() => undefined);
      const volumes = (await this.docker('volume', 'ls', '-q', '--filter', filter).catch(() => '')).split('\n').filter(Boolean);
      if (volumes.length) await this.docker('volume', 'rm', '-f', ...volumes).catch(() => undefined);
      for (const n of (await this.docker('network', 'ls', '-q', '--filter', filter).catch(() => '')).split('\n').filter(Boolean)) await this.docker('network', 'rm', n).catch(() => undefined);
      const images = (await this.docker('images', '-q', '--filter', filter).catch(() => '')).split('\n').filter(Boolean);
      if (images.length) await this.docker('rmi', '-f', ...new Set(images)).catch(() => undefined);
    }
    await removeDirs(this.dirs);
  }
}


export const condition = (s: AppStatusFile | undefined, type: string): Condition | undefined => s?.status.conditions.find((c) => c.type === type);
