/**
 * The one entry point for plugin authors: every type a plugin needs, nothing else. TypeScript
 * authors write
 *
 *   import type { PluginApp } from 'sluice/plugin';
 *   export const title = 'My guard';
 *   export function init(app: PluginApp) { app.addHook('smtp:rcpt_to', async (address) => { … }); }
 *
 * ("sluice/plugin" is this file, through package.json "exports"). Everything a plugin uses at
 * run time comes through `app` (app.reject, app.options, app.logger …), so a plugin needs no
 * runtime import of Sluice and loads the same from the repo's plugins/core or from an app dir.
 */
export type {
  AuthAttempt,
  BounceInfo,
  ConnectOptions,
  DeliveredInfo,
  Delivery,
  DeliveryFailure,
  HookEnvelope,
  HookHandler,
  HookKind,
  HookMap,
  HookName,
  InboundMessageInfo,
  MessageInfo,
  OutcomeInfo,
  PluginProcess,
  ReleaseInfo,
  ReleaseReason,
  Routing,
  SenderConnection,
  StoredMessageInfo,
} from './hooks.js';
export type { OptionSchema, Options, PluginApp, PluginModule, PluginRoute, PluginWebhookOptions } from './facade.js';
export type { MessageHeaders } from '../message/headers.js';
export type { Origin } from '../queue/types.js';
export type { Config } from '../config/schema.js';
