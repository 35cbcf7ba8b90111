// Runs once before all test files: the standard test images exist before any test needs them.
// A missing Docker engine is reported here, loudly, for the whole run.
import { requireDocker, buildStandardImages } from './docker.js';

export default async function setup(): Promise<void> {
  await requireDocker();
  await buildStandardImages();
}
