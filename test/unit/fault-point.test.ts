import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const module = fileURLToPath(new URL('../../dist/src/util/fault-point.js', import.meta.url));
const run = (fault: string | undefined) =>
  spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(module)}); for (let i = 0; i < 3; i++) m.faultPoint('deploy:after-create'); console.log('alive');`], {
    env: { ...process.env, ...(fault === undefined ? {} : { BERTH_FAULT: fault }) },
    encoding: 'utf8',
  });

describe('fault points (BERTH_FAULT)', () => {
  it('do nothing unless the variable names them', () => {
    expect(run(undefined)).toMatchObject({ status: 0, stdout: 'alive\n' });
    expect(run('deploy:after-start')).toMatchObject({ status: 0, stdout: 'alive\n' });
  });

  it('kill the process (SIGKILL) at the named point, or at its N-th hit', () => {
    expect(run('deploy:after-create')).toMatchObject({ signal: 'SIGKILL', stdout: '' });
    expect(run('deploy:after-create@3')).toMatchObject({ signal: 'SIGKILL', stdout: '' });
    expect(run('deploy:after-create@4')).toMatchObject({ status: 0, stdout: 'alive\n' });
  });
});
