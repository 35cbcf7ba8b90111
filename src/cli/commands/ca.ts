// berth ca export: the local CA's root certificate, to trust on your devices.
import { filesConfig, UsageError } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { LocalCa } from '../../certs/local-ca.js';
import { EXIT_OK, defineCommand } from '../command.js';

const usage = `Usage: berth ca export

Print the root certificate (PEM) of berth's local CA, which signs the certificates of LAN
names (tls: local, or auto for .lan .local .home.arpa .internal, single labels and IPs).
Import it once into each device's trust store. The CA is created in the state folder the
first time it is needed; its key never leaves that folder.

  berth ca export > berth-root.pem
  curl --cacert berth-root.pem https://app.lan:8443/

Options:
${optionHelp(['files'])}
`;

export const caCommand = defineCommand({
  name: 'ca',
  summary: 'print the local CA\'s root certificate (berth ca export)',
  usage,
  scopes: ['files'],
  positionals: true,
  async run({ values, positionals }) {
    if (positionals[0] !== 'export' || positionals.length !== 1) throw new UsageError('the only ca command is: berth ca export');
    const ca = await LocalCa.loadOrCreate(filesConfig(values).state);
    process.stdout.write(`${ca.exportRootPem().trimEnd()}\n`);
    return EXIT_OK;
  },
});
