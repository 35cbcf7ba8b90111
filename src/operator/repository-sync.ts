// One sync of a GitRepository: ask for the branch head; when it moved (or the synced folder is
// gone), check that commit out and mirror its manifests into manifests/_webhook/<name>/.
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { GitSource } from '../git/git-source.js';
import { listFiles } from '../git/git-source.js';
import { syncRepositoryManifests, WEBHOOK_DIR } from '../webhook/revision-manifest.js';
import type { SyncInput, SyncOutput } from '../../controllers/gitrepository/gitrepository.machine.js';

export interface RepositorySyncDeps {
  git: GitSource;
  manifestsDir: string;
  stateDir: string;
}

export function repositoryFolder(manifestsDir: string, name: string): string {
  return join(manifestsDir, WEBHOOK_DIR, name);
}

export async function syncRepository(input: SyncInput, deps: RepositorySyncDeps, signal: AbortSignal): Promise<SyncOutput> {
  const { url, branch, path } = input.spec;
  const dest = repositoryFolder(deps.manifestsDir, input.name);
  const commit = await deps.git.resolveHead(url, branch, signal);
  const present = await stat(dest).then(() => true, () => false);
  if (commit === input.lastCommit && present) {
    const files = (await listFiles(dest, '/', { extensions: ['.yaml', '.yml'] })).files.map((f) => f.path);
    return { commit, files, changed: { added: [], updated: [], removed: [] }, skipped: [] };
  }
  const checkout = join(deps.stateDir, 'checkouts', `repo-${input.name}-${commit.slice(0, 12)}`);
  try {
    const { dir } = await deps.git.checkout(url, commit, checkout, signal, { branch });
    const r = await syncRepositoryManifests(dir, path, dest);
    const files = (await listFiles(dest, '/', { extensions: ['.yaml', '.yml'] })).files.map((f) => f.path);
    return { commit, files, changed: { added: r.added, updated: r.updated, removed: r.removed }, skipped: r.skipped.map((s) => `${s.path}: ${s.reason}`) };
  } finally {
    await rm(checkout, { recursive: true, force: true }).catch(() => undefined);
  }
}
