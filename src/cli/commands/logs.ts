// berth logs NAME [-f] [--build]: an app's container output, or its last build's log.
import { readFile } from 'node:fs/promises';
import { engineConfig, filesConfig, UsageError } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { DockerContainerRuntime } from '../../docker/docker-container-runtime.js';
import { listBuildLogs } from '../../build/image-builder.js';
import { ownerLabels } from '../../api/labels.js';
import { EXIT_FAILED, EXIT_OK, defineCommand } from '../command.js';

const usage = `Usage: berth logs NAME [-f] [--tail N] [--build]

Print the output (stdout and stderr) of the app's serving container, or with --build the log
of its last build (berth keeps the last 10 per app).

Options:
  -f, --follow                  keep printing new output (Ctrl-C to stop)
  --tail N                      only the last N lines (default: all)
  --build                       the last build's log instead
${optionHelp(['files', 'engine'])}
`;

export const logsCommand = defineCommand({
  name: 'logs',
  summary: 'an app\'s container output, or --build its last build log',
  usage,
  scopes: ['files', 'engine'],
  options: { follow: { type: 'boolean', short: 'f' }, tail: { type: 'string' }, build: { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals }) {
    const app = positionals[0];
    if (!app || positionals.length !== 1) throw new UsageError('exactly one NAME is required');
    const tail = values.tail === undefined ? undefined : Number(values.tail);
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new UsageError('--tail must be a whole number');
    if (values.build) {
      const logs = await listBuildLogs(filesConfig(values).state, app);
      const last = logs.at(-1);
      if (!last) {
        process.stderr.write(`no build log for ${app}\n`);
        return EXIT_FAILED;
      }
      const lines = (await readFile(last, 'utf8')).split('\n');
      process.stdout.write((tail !== undefined ? lines.slice(-tail - 1) : lines).join('\n'));
      return EXIT_OK;
    }
    const { docker, instance } = engineConfig(values);
    const runtime = DockerContainerRuntime.fromDockerHost(docker);
    const containers = await runtime.listContainers(ownerLabels(instance, app));
    const pick = containers.filter((c) => c.state === 'running').sort((a, b) => b.created - a.created)[0] ?? containers.sort((a, b) => b.created - a.created)[0];
    if (!pick) {
      process.stderr.write(`no container of app ${app} (instance ${instance})\n`);
      return EXIT_FAILED;
    }
    const abort = new AbortController();
    process.once('SIGINT', () => abort.abort());
    const stream = await runtime.containerLogs(pick.id, { follow: values.follow === true, ...(tail !== undefined ? { tail } : {}), signal: abort.signal });
    try {
      for await (const chunk of stream) process.stdout.write(chunk as Buffer);
    } catch (e) {
      if (!abort.signal.aborted) throw e;
    }
    return EXIT_OK;
  },
});
