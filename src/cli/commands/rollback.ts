// berth rollback NAME [--to REVISION]: run an earlier revision of an app built from git, from
// the image berth kept — no build. It writes the app's AppRevision, like a push would.
import { filesConfig, UsageError } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { readStatusFile } from '../../status/status-reader.js';
import { loadFolder } from '../../manifests/manifest-files.js';
import { writeAppRevision } from '../../webhook/revision-manifest.js';
import type { App, AppStatusFile } from '../../api/types.generated.js';
import { EXIT_FAILED, EXIT_OK, defineCommand } from '../command.js';

const usage = `Usage: berth rollback NAME [--to REVISION]

Deploy an earlier revision of an app built from git (spec.build.git): by default the last one
that deployed successfully before the current one; --to picks one from berth history (a
prefix of the commit is enough). The image is reused when berth kept it (build.keepImages,
default 2), so this takes seconds; otherwise that commit is built. The next push moves the app
forward again.

Options:
  --to REVISION                 the revision to return to
${optionHelp(['files'])}
`;

export const rollbackCommand = defineCommand({
  name: 'rollback',
  summary: 'return an app built from git to an earlier revision',
  usage,
  scopes: ['files'],
  options: { to: { type: 'string' } },
  positionals: true,
  async run({ values, positionals }) {
    const app = positionals[0];
    if (!app || positionals.length !== 1) throw new UsageError('exactly one NAME is required');
    const files = filesConfig(values);
    const manifest = [...(await loadFolder(files.manifests)).values()].flatMap((l) => l.objects).find((o) => o.kind === 'App' && o.name === app);
    const git = (manifest?.object as App | undefined)?.spec.build?.git;
    if (!git) {
      process.stderr.write(manifest ? `${app} is not built from git; to go back, change spec.image in its manifest\n` : `no app named ${JSON.stringify(app)} in ${files.manifests}\n`);
      return EXIT_FAILED;
    }
    const status = await readStatusFile<AppStatusFile>(files.status, `apps/${app}.yaml`);
    const current = status?.status.revision;
    const deployed = (status?.status.history ?? []).filter((h) => h.result === 'Succeeded' && h.revision);
    const to = values.to as string | undefined;
    const target = to
      ? [...deployed].reverse().find((h) => h.revision!.startsWith(to))?.revision ?? (/^[0-9a-f]{40}$/.test(to) ? to : undefined)
      : [...deployed].reverse().find((h) => h.revision !== current)?.revision;
    if (!target) {
      process.stderr.write(to ? `no revision ${to} in the history of ${app} (see berth history ${app}; give a full 40-character commit otherwise)\n` : `${app} has no earlier successful revision\n`);
      return EXIT_FAILED;
    }
    await writeAppRevision(files.manifests, app, { commit: target, url: git.url, branch: git.branch, source: 'rollback' });
    process.stdout.write(`rolling ${app} back to ${target.slice(0, 12)}\n`);
    return EXIT_OK;
  },
});
