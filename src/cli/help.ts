// Help text for commands, with the shared options rendered from the option table.
import { OPTIONS, type OptionDef } from '../config/options.js';

export function optionHelp(scopes: OptionDef['scope'][]): string {
  const rows = OPTIONS.filter((o) => scopes.includes(o.scope)).map((o) => {
    const def = 'default' in o ? ` (default ${o.default})` : '';
    return `  --${o.flag} ${o.type === 'number' ? 'N' : 'VALUE'}`.padEnd(32) + `${o.description}${def} [${o.env}]`;
  });
  return rows.join('\n');
}
