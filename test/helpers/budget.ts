/**
 * Time budgets for the fault plan's "within N seconds" criteria. The plan's numbers are for a
 * machine that runs the suite alone; when the machine is busier than its cores (load average
 * over the core count, e.g. other suites running beside this one), a budget stretches in
 * proportion, so a slow box does not pass for a slow Sluice. On an idle machine it is exactly N.
 */
import os from 'node:os';

export function budgetMs(baseMs: number): number {
  const cores = Math.max(1, os.cpus().length);
  const overload = os.loadavg()[0]! / cores;
  return Math.round(baseMs * Math.max(1, overload));
}
