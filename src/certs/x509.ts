// The one place that loads @peculiar/x509 (for signing: the local CA): v2 needs a Reflect
// polyfill imported before it (tsyringe throws otherwise). It finds Node's WebCrypto on
// globalThis by itself. Reading certificates needs none of this: see cert-pem.ts.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export { x509 };
