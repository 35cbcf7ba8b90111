// Which revision a built App runs. Git builds: the AppRevision berth wrote under
// manifests/_webhook/ (by a webhook push, the first deploy, or a rollback) — a file, so a
// restart, a replay or a person reading the folder sees the same truth. With none yet, berth
// resolves the branch head itself and writes it. Path builds: a hash of the build context,
// recomputed when the manifest changes or on `berth retry`.
import { dirname, join, resolve } from 'node:path';
import type { App, AppRevision } from '../api/types.generated.js';
import type { BuildSpec } from '../../controllers/ports/image-builder.js';
import { asBerthError } from '../../controllers/ports/errors.js';
import type { DesiredEntry, DesiredStore } from '../desired/desired-store.js';
import type { GitSource } from '../git/git-source.js';
import { hashBuildContext, scanBuildContext } from '../build/build-context.js';
import { imageTag } from '../build/image-builder.js';
import { sameRepository } from '../webhook/push-event.js';
import { writeAppRevision, WEBHOOK_DIR } from '../webhook/revision-manifest.js';
import type { Logger } from '../util/logger.js';

export interface ResolvedBuild {
  image?: string;
  revision?: string;
  build?: BuildSpec;
  waiting?: { reason: string; message: string };
}

interface Pending {
  /** What the result is for (git url+branch, or the manifest's spec hash). */
  key: string;
  revision?: string;
  error?: { reason: string; message: string };
  running: boolean;
  attempt: number;
  timer?: NodeJS.Timeout;
}

const RETRY_BASE_MS = 5_000;
const RETRY_CAP_MS = 5 * 60_000;

export interface RevisionsOptions {
  git: GitSource;
  manifestsDir: string;
  desired: DesiredStore;
  log: Logger;
  /** Called when an app's revision became known (or failed): its desired state changed. */
  onChange: (app: string) => void;
}

export class Revisions {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly opts: RevisionsOptions) {}

  resolve(entry: DesiredEntry): ResolvedBuild {
    const app = entry.object as App;
    const b = app.spec.build;
    if (!b) return { image: app.spec.image };
    const buildArgs = Object.fromEntries(Object.entries(b.args ?? {}).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
    if (b.git) {
      const branch = b.git.branch;
      const rev = this.opts.desired.get('AppRevision', entry.name)?.object as AppRevision | undefined;
      if (rev && sameRepository(rev.spec.url ?? b.git.url, b.git.url) && (rev.spec.branch ?? branch) === branch) {
        const commit = rev.spec.commit;
        return {
          image: imageTag(entry.name, commit), revision: commit,
          build: { app: entry.name, revision: commit, image: imageTag(entry.name, commit), source: { git: { url: b.git.url, branch, commit } }, dockerfile: b.dockerfile, buildArgs },
        };
      }
      return { waiting: this.resolveHead(entry.name, b.git.url, branch) };
    }
    if (entry.file.startsWith(`${WEBHOOK_DIR}/`)) {
      return { waiting: { reason: 'PathBuildNotAllowed', message: 'build.path is not allowed in manifests synced from a repository (the build folder is not synced); use build.git' } };
    }
    const dir = resolve(dirname(join(this.opts.manifestsDir, entry.file)), b.path!);
    const key = `${entry.specHash}`;
    const p = this.pending.get(entry.name);
    if (p?.key === key && p.revision) {
      return {
        image: imageTag(entry.name, p.revision), revision: p.revision,
        build: { app: entry.name, revision: p.revision, image: imageTag(entry.name, p.revision), source: { path: dir }, dockerfile: b.dockerfile, buildArgs },
      };
    }
    return { waiting: this.hashContext(entry.name, key, dir, b.dockerfile, buildArgs) };
  }

  /** Forget what is known about an app (retry, deletion): the next resolve starts over. */
  forget(app: string): void {
    const p = this.pending.get(app);
    if (p?.timer) clearTimeout(p.timer);
    this.pending.delete(app);
  }

  /** A webhook push for an App: ask the repository for the branch head (a hint, not a command) and record it. */
  async followPush(app: string, url: string, branch: string, delivery: string | undefined, signal?: AbortSignal): Promise<void> {
    const commit = await this.opts.git.resolveHead(url, branch, signal);
    const changed = await writeAppRevision(this.opts.manifestsDir, app, { commit, url, branch, source: 'webhook', ...(delivery ? { delivery } : {}) });
    this.opts.log.info({ app, commit: commit.slice(0, 12), changed }, changed ? 'new revision from a push' : 'push for the revision already recorded');
  }

  stop(): void {
    for (const p of this.pending.values()) if (p.timer) clearTimeout(p.timer);
  }

  private resolveHead(app: string, url: string, branch: string): { reason: string; message: string } {
    const key = `${url}#${branch}`;
    let p = this.pending.get(app);
    if (!p || p.key !== key) {
      this.forget(app);
      p = { key, running: false, attempt: 0 };
      this.pending.set(app, p);
    }
    if (!p.running && !p.timer && !p.revision) this.run(app, p, async () => {
      const commit = await this.opts.git.resolveHead(url, branch);
      await writeAppRevision(this.opts.manifestsDir, app, { commit, url, branch, source: 'initial' });
      return commit;
    });
    return p.error ?? { reason: 'ResolvingRevision', message: `looking up the head of ${branch} in ${url}` };
  }

  private hashContext(app: string, key: string, dir: string, dockerfile: string, buildArgs: Record<string, string>): { reason: string; message: string } {
    let p = this.pending.get(app);
    if (!p || p.key !== key) {
      this.forget(app);
      p = { key, running: false, attempt: 0 };
      this.pending.set(app, p);
    }
    if (!p.running && !p.timer && !p.revision && !p.error) this.run(app, p, async () => hashBuildContext(await scanBuildContext(dir, { dockerfile }), { dockerfile, buildArgs }), false);
    return p.error ?? { reason: 'ReadingContext', message: `reading the build context ${dir}` };
  }

  /** Run a lookup; transient failures retry with backoff, a stalled one waits for a change or retry. */
  private run(app: string, p: Pending, work: () => Promise<string>, retry = true): void {
    p.running = true;
    void work().then(
      (revision) => {
        p.running = false;
        p.revision = revision;
        p.error = undefined;
        if (this.pending.get(app) === p) this.opts.onChange(app);
      },
      (e: unknown) => {
        p.running = false;
        const err = asBerthError(e, 'RevisionUnavailable');
        p.error = { reason: err.reason, message: err.message };
        this.opts.log.warn({ app, reason: err.reason }, err.message);
        if (retry && err.kind !== 'stalled' && this.pending.get(app) === p) {
          const delay = Math.min(RETRY_BASE_MS * 2 ** p.attempt++, RETRY_CAP_MS);
          p.timer = setTimeout(() => {
            p.timer = undefined;
            p.error = undefined;
            this.opts.onChange(app);
          }, delay);
          p.timer.unref();
        }
        if (this.pending.get(app) === p) this.opts.onChange(app);
      },
    );
  }
}
