// berth status [NAME] [--json] [--watch]: the apps as their status files describe them.
import { watch } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { filesConfig } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { readAppStatuses } from '../../status/status-reader.js';
import type { AppStatusFile } from '../../api/types.generated.js';
import { EXIT_FAILED, EXIT_OK, defineCommand } from '../command.js';

const usage = `Usage: berth status [NAME] [--json] [--watch]

Without NAME: a table of all apps (name, phase, ready, url, revision, age, message).
With NAME: that app's status file. Exit 1 when NAME does not exist.

Options:
  --json                        print JSON
  --watch                       keep printing as status changes (Ctrl-C to stop)
${optionHelp(['files'])}
`;

export function age(since: string | undefined, now = Date.now()): string {
  if (!since) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** The one line that best explains an app's state. */
export function headline(doc: AppStatusFile): string {
  const c = doc.status.conditions;
  const stalled = c.find((x) => x.type === 'Stalled' && x.status === 'True');
  const ready = c.find((x) => x.type === 'Ready');
  return (stalled ?? ready)?.message ?? '';
}

export function renderTable(docs: AppStatusFile[]): string {
  const rows = [['NAME', 'PHASE', 'READY', 'URL', 'REVISION', 'AGE', 'MESSAGE']];
  for (const d of docs) {
    const ready = d.status.conditions.find((x) => x.type === 'Ready');
    rows.push([
      d.metadata.name, d.status.phase, ready?.status ?? 'Unknown', d.status.url ?? '-',
      d.status.revision?.slice(0, 12) ?? '-', age(ready?.lastTransitionTime), headline(d),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

export const statusCommand = defineCommand({
  name: 'status',
  summary: 'table of apps, or one app in detail',
  usage,
  scopes: ['files'],
  options: { json: { type: 'boolean' }, watch: { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals }) {
    const dir = filesConfig(values).status;
    const name = positionals[0];
    const render = async (): Promise<[string, number]> => {
      const docs = await readAppStatuses(dir);
      if (name !== undefined) {
        const doc = docs.find((d) => d.metadata.name === name);
        if (!doc) return [`no app named ${JSON.stringify(name)} in ${dir}\n`, EXIT_FAILED];
        return [values.json ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc, { lineWidth: 0 }), EXIT_OK];
      }
      if (values.json) return [`${JSON.stringify(docs, null, 2)}\n`, EXIT_OK];
      return [docs.length === 0 ? `no apps (status folder ${dir})\n` : renderTable(docs), EXIT_OK];
    };
    if (!values.watch) {
      const [text, code] = await render();
      (code === EXIT_OK ? process.stdout : process.stderr).write(text);
      return code;
    }
    return watchLoop(join(dir, 'apps'), render);
  },
});

async function watchLoop(dir: string, render: () => Promise<[string, number]>): Promise<number> {
  let last = '';
  const draw = async () => {
    const [text] = await render();
    if (text === last) return;
    last = text;
    process.stdout.write(`${process.stdout.isTTY ? '\x1b[2J\x1b[H' : '\n'}${text}`);
  };
  await draw();
  // fs.watch for promptness, plus a slow poll in case the folder did not exist yet.
  let watcher: ReturnType<typeof watch> | undefined;
  const attach = () => {
    if (watcher) return;
    try {
      watcher = watch(dir, () => void draw());
    } catch {
      watcher = undefined;
    }
  };
  attach();
  const timer = setInterval(() => {
    attach();
    void draw();
  }, 2000);
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  clearInterval(timer);
  watcher?.close();
  return EXIT_OK;
}
