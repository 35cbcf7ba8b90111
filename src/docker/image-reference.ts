// Image references as Docker parses them (distribution/reference grammar, without IPv6
// registries), so a bad name is reported as InvalidImageName before any engine call, and a pull
// never omits the tag (the engine pulls EVERY tag of a repository when the tag is empty).

import { BerthError } from '../../controllers/ports/errors.js';

const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`;
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const REFERENCE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const IMAGE_ID = /^(?:sha256:)?[0-9a-f]{64}$/;
const MAX_NAME_LENGTH = 255;

export interface ImageReference {
  /** Repository, with its registry when one was given. */
  name: string;
  tag?: string;
  digest?: string;
}

/** The parts of a reference, or undefined when Docker would reject it ("invalid reference format"). */
export function parseImageReference(ref: string): ImageReference | undefined {
  const m = REFERENCE.exec(ref);
  if (!m?.[1] || m[1].length > MAX_NAME_LENGTH) return undefined;
  // A 64-hex repository name would be ambiguous with an image id; Docker refuses it too.
  if (/^[0-9a-f]{64}$/.test(m[1])) return undefined;
  const out: ImageReference = { name: m[1] };
  if (m[2] !== undefined) out.tag = m[2];
  if (m[3] !== undefined) out.digest = m[3];
  return out;
}

/** True for a name[:tag][@digest] reference or a full image id. */
export function isValidImageReference(ref: string): boolean {
  return IMAGE_ID.test(ref) || parseImageReference(ref) !== undefined;
}

/** Arguments of the engine's pull call: a digest wins over a tag, and no tag means `latest`. */
export function pullArguments(ref: ImageReference): { fromImage: string; tag: string } {
  return { fromImage: ref.name, tag: ref.digest ?? ref.tag ?? 'latest' };
}

/** The error for a reference Docker would refuse: stalled, since retrying cannot fix it. */
export function invalidImageName(ref: string): BerthError {
  return new BerthError('stalled', 'InvalidImageName', `"${ref}" is not a valid image reference (invalid reference format)`);
}
