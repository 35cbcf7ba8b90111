// berth secret set NAME KEY=VALUE… | unset NAME KEY… | list NAME — values are never printed.
import { filesConfig, UsageError } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { listSecretNames, loadKeyRing, updateSecrets } from '../../secrets/secret-store.js';
import { EXIT_OK, defineCommand } from '../command.js';

const usage = `Usage: berth secret set APP KEY=VALUE [KEY=VALUE…]
       berth secret unset APP KEY [KEY…]
       berth secret list APP [--json]

Secrets are encrypted at rest (AES-256-GCM) in the state folder with BERTH_SECRET_KEY, or with
a key file berth generates there (0600). An app uses them through spec.secretEnv (environment
variables) and routes[].auth.bearerSecret. KEY=- reads the value from standard input, keeping
it out of your shell history. Changing a secret rolls the apps that use it. Values are never
printed, logged or written to status files.

Options:
  --json                        list as JSON
${optionHelp(['files'])}
`;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const APP = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

async function stdinText(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export const secretCommand = defineCommand({
  name: 'secret',
  summary: 'set, unset or list an app\'s secrets (values never printed)',
  usage,
  scopes: ['files'],
  options: { json: { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals }) {
    const [verb, app, ...rest] = positionals;
    if (!verb || !['set', 'unset', 'list'].includes(verb)) throw new UsageError('say set, unset or list');
    if (!app || !APP.test(app)) throw new UsageError('APP must be an app name (a DNS label)');
    const { state } = filesConfig(values);
    if (verb === 'list') {
      const names = await listSecretNames(state, app);
      process.stdout.write(values.json ? `${JSON.stringify(names)}\n` : names.map((n) => `${n}\n`).join(''));
      return EXIT_OK;
    }
    if (rest.length === 0) throw new UsageError(verb === 'set' ? 'give at least one KEY=VALUE' : 'give at least one KEY');
    const ring = (await loadKeyRing(state, process.env, true))!;
    if (verb === 'set') {
      const pairs: [string, string][] = [];
      for (const arg of rest) {
        const i = arg.indexOf('=');
        const key = i > 0 ? arg.slice(0, i) : arg;
        if (i <= 0 || !NAME.test(key)) throw new UsageError(`${JSON.stringify(key)}: write KEY=VALUE with KEY a variable name`);
        const value = arg.slice(i + 1) === '-' ? await stdinText() : arg.slice(i + 1);
        if (value.length === 0) throw new UsageError(`${key}: the value is empty (use unset to remove a secret)`);
        pairs.push([key, value]);
      }
      await updateSecrets(state, ring, (apps, seal) => {
        for (const [k, v] of pairs) (apps[app] ??= {})[k] = seal(app, k, v);
      });
      process.stdout.write(`set ${pairs.map(([k]) => k).join(', ')} for ${app}\n`);
      return EXIT_OK;
    }
    for (const k of rest) if (!NAME.test(k)) throw new UsageError(`${JSON.stringify(k)} is not a variable name`);
    let removed: string[] = [];
    await updateSecrets(state, ring, (apps) => {
      removed = rest.filter((k) => apps[app]?.[k] !== undefined);
      for (const k of removed) delete apps[app]![k];
    });
    process.stdout.write(removed.length ? `unset ${removed.join(', ')} for ${app}\n` : `no such secret for ${app}\n`);
    return removed.length ? EXIT_OK : 1;
  },
});
