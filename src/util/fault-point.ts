// Fault points for the reliability suite: BERTH_FAULT="deploy:after-create" (comma-separated;
// "name@N" for the N-th time the point is reached) makes berth SIGKILL itself right there, to
// prove a crash between two side effects loses nothing. Without the variable this is a no-op.
const wanted = new Map<string, number>();
for (const item of (process.env.BERTH_FAULT ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
  const [name, nth] = item.split('@');
  wanted.set(name!, Number(nth ?? 1));
}
const hits = new Map<string, number>();

export function faultPoint(name: string): void {
  const at = wanted.get(name);
  if (at === undefined) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n === at) {
    process.stderr.write(`berth: fault point ${name} reached (BERTH_FAULT): killing myself\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
