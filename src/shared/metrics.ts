import client from 'prom-client';

/** The process's one metrics registry, with Node's default metrics. */
export function createMetricsRegistry(role: string): client.Registry {
  const registry = new client.Registry();
  registry.setDefaultLabels({ role });
  client.collectDefaultMetrics({ register: registry });
  return registry;
}
export { client as prom };
