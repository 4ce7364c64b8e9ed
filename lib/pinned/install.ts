/**
 * Installs this folder's replacements of smtp-server and nodemailer internals, once per process,
 * called by the process roots before anything listens or connects: the master
 * (lib/app/master.ts) takes the ones its listeners use, a worker (lib/app/worker.ts) the ones
 * delivery uses. No module installs anything by being imported, so a process, a test or a tool
 * gets the library's own code unless its root asks for a patch.
 *
 * Each decision (internals.ts: tested version, every private member present) is made here, once,
 * and logged as LIBRARY_UNTESTED by the root when it is not the plain "tested and enabled".
 */
import { installFastDataScan } from './data-scan.js';
import { installFastDataStream } from './dot-stuff.js';
import { decide } from './internals.js';

let guards: boolean | undefined;

/** Whether the listener defences may wrap this smtp-server (decided once per process). */
export function guardsEnabled(): boolean {
  guards ??= decide('guards').enabled;
  return guards;
}

/** What the master's SMTP listeners (submission, inbound) rely on. */
export function installMasterPatches(): void {
  installFastDataScan();
  guardsEnabled();
}

/** What a delivery worker's SMTP client relies on. */
export function installWorkerPatches(): void {
  installFastDataStream();
  // the DANE check reads the TLS socket of nodemailer's connection: without it a delivery that
  // requires TLS fails (ETLS); decided here so the warning is logged at start
  decide('daneSocket');
}
