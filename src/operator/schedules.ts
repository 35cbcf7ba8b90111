// Housekeeping on a schedule (node-cron, UTC, never overlapping): a full resync as the safety
// net behind events and per-app timers, pruning old images, and a daily backup of the state.
// Each job's last run and outcome go to status/operator.yaml. node-cron 4 arms one timer for
// the next run, so an idle berth does not tick.
import cron, { type ScheduledTask } from 'node-cron';
import { cronLogger } from '../util/cron-logger.js';
import { copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';

export interface JobStatus {
  schedule: string;
  lastRun?: string;
  lastOutcome?: 'Succeeded' | 'Failed';
  lastMessage?: string;
  nextRun?: string;
}

export interface JobDefinition {
  name: string;
  schedule: string;
  /** Resolves with a short summary; throwing marks the run Failed. */
  run: () => Promise<string>;
}

export class Schedules {
  private readonly tasks = new Map<string, ScheduledTask>();
  private readonly jobsByName = new Map<string, JobDefinition>();
  private readonly status = new Map<string, JobStatus>();
  /** Jobs running now: a run never starts while the same job runs (scheduled or asked for). */
  private readonly running = new Set<string>();

  constructor(
    jobs: JobDefinition[],
    private readonly log: Logger,
    private readonly onRun: () => void,
  ) {
    for (const job of jobs) {
      this.jobsByName.set(job.name, job);
      const task = cron.schedule(job.schedule, () => this.execute(job), {
        name: job.name,
        timezone: 'UTC',
        noOverlap: true,
        logger: cronLogger(log),
      });
      task.unref();
      this.tasks.set(job.name, task);
      this.status.set(job.name, { schedule: job.schedule });
    }
  }

  /** Run a job now (outside its schedule), e.g. from tests or the admin API. */
  async runNow(name: string): Promise<void> {
    const job = this.jobsByName.get(name);
    if (job) await this.execute(job);
  }

  jobs(): Record<string, JobStatus> {
    const out: Record<string, JobStatus> = {};
    for (const [name, s] of this.status) {
      const next = this.tasks.get(name)?.getNextRun();
      out[name] = { ...s, ...(next ? { nextRun: next.toISOString() } : {}) };
    }
    return out;
  }

  async stop(): Promise<void> {
    for (const t of this.tasks.values()) await t.destroy();
  }

  private async execute(job: JobDefinition): Promise<void> {
    if (this.running.has(job.name)) return;
    this.running.add(job.name);
    try {
      await this.executeOnce(job);
    } finally {
      this.running.delete(job.name);
    }
  }

  private async executeOnce(job: JobDefinition): Promise<void> {
    const s = this.status.get(job.name)!;
    const at = new Date().toISOString();
    try {
      const message = await job.run();
      Object.assign(s, { lastRun: at, lastOutcome: 'Succeeded', lastMessage: message });
      this.log.info({ job: job.name }, message);
    } catch (e) {
      Object.assign(s, { lastRun: at, lastOutcome: 'Failed', lastMessage: (e as Error).message });
      this.log.error({ err: e, job: job.name }, 'scheduled job failed');
    }
    this.onRun();
  }
}

const KEEP_BACKUPS = 7;

/** Copy the state and the sealed secrets into <state>/backups/<date>/, keeping the newest 7. */
export async function backupState(stateDir: string, now = new Date()): Promise<string> {
  const dir = join(stateDir, 'backups', now.toISOString().slice(0, 10));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const copied: string[] = [];
  for (const f of ['state.json', 'secrets.json', 'secret.key']) {
    const from = join(stateDir, f);
    if (await stat(from).then(() => true, () => false)) {
      await copyFile(from, join(dir, f));
      copied.push(f);
    }
  }
  const all = (await readdir(join(stateDir, 'backups'))).filter((d) => /^\d{4}-\d{2}-\d{2}$/.test(d)).sort();
  for (const old of all.slice(0, Math.max(0, all.length - KEEP_BACKUPS))) await rm(join(stateDir, 'backups', old), { recursive: true, force: true });
  return `backed up ${copied.join(', ') || 'nothing'} to ${dir}`;
}
