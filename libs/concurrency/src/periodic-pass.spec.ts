import { PeriodicPass } from './periodic-pass';

describe('PeriodicPass', () => {
  it('never overlaps itself: a run due while one is in flight does nothing', async () => {
    let runs = 0;
    let release!: () => void;
    const pass = new PeriodicPass(1_000, async () => {
      runs++;
      await new Promise<void>((r) => (release = r));
    });
    const first = pass.runOnce();
    await pass.runOnce();
    expect(runs).toBe(1);
    release();
    await first;
    const second = pass.runOnce();
    expect(runs).toBe(2);
    release();
    await second;
  });

  it('runs again after a run that failed', async () => {
    let runs = 0;
    const pass = new PeriodicPass(1_000, async () => {
      runs++;
      throw new Error('boom');
    });
    await expect(pass.runOnce()).rejects.toThrow('boom');
    await expect(pass.runOnce()).rejects.toThrow('boom');
    expect(runs).toBe(2);
  });
});
