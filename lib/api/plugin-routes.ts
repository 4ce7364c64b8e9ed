/**
 * Routes that plugins added with app.addRoute(), registered with the API's own: the token check
 * and the JSON error shape apply to them as to every route. A route that clashes with another
 * stops the start, naming the plugin.
 */
import type { FastifyInstance } from 'fastify';
import { PluginLoadError } from '../plugins/facade.js';
import type { LoadedPlugins } from '../plugins/loader.js';

export function pluginRoutes(routes: LoadedPlugins['routes']) {
  return (app: FastifyInstance) => {
    for (const { plugin, route } of routes) {
      try {
        app.route({ method: route.method, url: route.url, schema: route.schema, handler: route.handler });
      } catch (err) {
        throw new PluginLoadError(plugin, `cannot add the route ${String(route.method)} ${route.url}: ${(err as Error).message}`);
      }
    }
  };
}
