// Prometheus text exposition of berth's own metrics.
import type { ControllerManager } from './controller-manager.js';

export function renderMetrics(manager: ControllerManager): string {
  const lines = ['# HELP berth_apps Apps by phase.', '# TYPE berth_apps gauge'];
  for (const [phase, n] of Object.entries(manager.phaseCounts())) lines.push(`berth_apps{phase="${phase}"} ${n}`);
  lines.push('# HELP berth_docker_connected 1 when berth is connected to the Docker engine.', '# TYPE berth_docker_connected gauge');
  lines.push(`berth_docker_connected ${manager.docker.connected ? 1 : 0}`);
  return `${lines.join('\n')}\n`;
}
