import { describe, it, expect } from 'vitest';
import { mkdtemp, rm, writeFile, readdir, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Schedules, backupState } from '../../src/operator/schedules.js';
import { silentLogger } from '../../src/util/logger.js';

describe('scheduled jobs', () => {
  it('record each run\'s outcome and the next run, and never overlap', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const s = new Schedules([
      { name: 'ok', schedule: '0 0 1 1 *', run: async () => { running++; maxRunning = Math.max(maxRunning, running); await new Promise((r) => setTimeout(r, 30)); running--; runs++; return 'done'; } },
      { name: 'bad', schedule: '0 0 1 1 *', run: () => Promise.reject(new Error('disk full')) },
    ], silentLogger, () => undefined);
    try {
      await Promise.all([s.runNow('ok'), s.runNow('ok')]);
      await s.runNow('bad');
      const jobs = s.jobs();
      expect(jobs.ok).toMatchObject({ lastOutcome: 'Succeeded', lastMessage: 'done', schedule: '0 0 1 1 *' });
      expect(jobs.ok!.nextRun).toMatch(/-01-01T00:00:00/);
      expect(jobs.bad).toMatchObject({ lastOutcome: 'Failed', lastMessage: 'disk full' });
      expect(maxRunning).toBe(1);
      expect(runs).toBeGreaterThanOrEqual(1);
    } finally {
      await s.stop();
    }
  });

  it('back up the state daily and keep the newest 7', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-backup-'));
    try {
      await writeFile(join(dir, 'state.json'), '{"version":1}');
      await mkdir(join(dir, 'backups'));
      for (let d = 1; d <= 9; d++) await mkdir(join(dir, 'backups', `2026-01-0${d}`));
      const msg = await backupState(dir, new Date('2026-02-01T04:07:00Z'));
      expect(msg).toMatch(/backed up state\.json/);
      const kept = (await readdir(join(dir, 'backups'))).sort();
      expect(kept).toHaveLength(7);
      expect(kept.at(-1)).toBe('2026-02-01');
      expect(await readdir(join(dir, 'backups', '2026-02-01'))).toEqual(['state.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
