// Runs once before all test files: leftovers of interrupted runs go, and the standard test images
// exist before any test needs them.
// A missing Docker engine is reported here, loudly, for the whole run.
import { requireDocker, buildStandardImages, removeStaleTestInstances } from './docker.js';

export default async function setup(): Promise<void> {
  await requireDocker();
  const stale = await removeStaleTestInstances();
  if (stale.length > 0) console.log(`removed what interrupted test runs left: instances ${stale.join(', ')}`);
  await buildStandardImages();
}
