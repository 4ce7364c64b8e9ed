/**
 * The private members of smtp-server and nodemailer that Sluice relies on, in one place.
 *
 * Three files reach past those libraries' public API:
 * - lib/pinned/data-scan.ts replaces SMTPStream's end-of-DATA scan (speed);
 * - lib/pinned/dot-stuff.ts replaces nodemailer DataStream's dot-stuffing (speed);
 * - lib/accept/guarded-server.ts and session-guards.ts wrap SMTPServer and SMTPConnection to add
 *   per-client caps, shedding, deadlines and junk-command limits (defences);
 * and lib/deliver/smtp-client.ts reads the TLS socket of nodemailer's connection for DANE;
 * lib/inbound/pop3/multiline.ts uses nodemailer's DataStream (a module path, not its public API)
 * whole, as a stream, which the pin covers.
 *
 * The replacements are installed by the process roots through install.ts, never by an import.
 *
 * Both libraries are pinned exactly in package.json (an installed package has no lockfile, so a
 * range would let a user's `npm install` pick a version we never ran). Should another version be
 * installed anyway (an override, a hand edit), each part decides here:
 * - the speed patches are only correct while they give exactly the library's output, which their
 *   equivalence tests prove for the tested version only: on any other version they are not
 *   installed and the library's own code runs;
 * - the defences wrap members without replacing their logic: they stay on when every member they
 *   use is still there (turning them off would reopen the holes they close), and are turned off,
 *   leaving the library's plain server, only when one is missing.
 * Every such decision is a warning (event LIBRARY_UNTESTED) the master and each worker log at
 * start. test/pinned/internals.test.ts keeps this list, package.json and node_modules in step.
 */
import { createRequire } from 'node:module';
import net from 'node:net';
// the same module copies the patches import (the libraries ship CommonJS and ES module builds,
// each with classes of its own)
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import NodemailerConnection from 'nodemailer/lib/smtp-connection';
import type { Logger } from '../log/logger.js';

const require = createRequire(import.meta.url);

/** The versions every test ran against; package.json pins these exactly. */
export const TESTED_VERSIONS = {
  'smtp-server': '3.21.6',
  nodemailer: '10.6.0',
} as const;

export type PinnedLibrary = keyof typeof TESTED_VERSIONS;

interface MemberList {
  /** where the members live, for the warning */
  owner: string;
  /** methods on the prototype */
  methods: readonly string[];
  /** fields every instance has (set in the constructor) */
  fields: readonly string[];
  /** a fresh instance to look the fields up on */
  instance: () => object;
}

/** What each patch uses. */
export const PRIVATE_MEMBERS = {
  dataScan: {
    library: 'smtp-server',
    lists: [
      {
        owner: 'SMTPStream',
        methods: ['_feedDataStream', '_countDataBytes', '_endDataMode'],
        fields: ['_atDataStart', '_lastBytes', '_dataStream', '_dataMode'],
        instance: () => new SMTPStream(),
      },
    ],
  },
  dotStuff: {
    library: 'nodemailer',
    lists: [
      {
        owner: 'DataStream',
        methods: ['_transform'],
        fields: ['lastByte', 'inByteCount', 'outByteCount'],
        instance: () => new DataStream(),
      },
    ],
  },
  guards: {
    library: 'smtp-server',
    lists: [
      {
        owner: 'SMTPServer',
        methods: ['_acceptSocket', '_expectsProxyHeader', '_onClientConnect', '_onError'],
        fields: ['_pendingSockets', 'connections'],
        instance: () => newSmtpServer(),
      },
      {
        owner: 'SMTPConnection',
        methods: ['_setListeners', '_onCommand', '_createParser', '_isDisabled', '_isSupported', '_whenWritable', 'connectionReady', 'send', 'close'],
        fields: ['_socket', '_parser', '_ready', '_upgrading', '_nextHandler', '_closing', '_closed'],
        instance: () => new SMTPConnection(newSmtpServer(), new net.Socket()),
      },
      {
        owner: 'SMTPStream',
        methods: [],
        fields: ['_dataMode', '_dataStream'],
        instance: () => new SMTPStream(),
      },
    ],
  },
  daneSocket: {
    library: 'nodemailer',
    lists: [
      {
        owner: 'SMTPConnection',
        methods: [],
        fields: ['_socket'],
        instance: () => new NodemailerConnection({}),
      },
    ],
  },
} as const satisfies Record<string, { library: PinnedLibrary; lists: readonly MemberList[] }>;

export type Patch = keyof typeof PRIVATE_MEMBERS;

function newSmtpServer(): SMTPServer {
  // without STARTTLS no TLS context is made (nor the library's default-certificate warning)
  return new SMTPServer({ disabledCommands: ['STARTTLS'], hideSTARTTLS: true });
}

/**
 * A library object seen with the private members a patch uses (listed in PRIVATE_MEMBERS and
 * checked by missingMembers before the patch is installed): the one place they get a type.
 */
export function withPrivateMembers<T extends object>(target: object): T {
  return target as T;
}

/** The installed version of a library. */
export function installedVersion(library: PinnedLibrary): string {
  return (require(`${library}/package.json`) as { version: string }).version;
}

/** The members of `patch` the installed library lacks, as "Owner.member". */
export function missingMembers(patch: Patch): string[] {
  const missing: string[] = [];
  for (const list of PRIVATE_MEMBERS[patch].lists as readonly MemberList[]) {
    let instance: Record<string, unknown>;
    try {
      instance = list.instance() as Record<string, unknown>;
    } catch {
      missing.push(`${list.owner} (cannot be constructed)`);
      continue;
    }
    for (const m of list.methods) if (typeof instance[m] !== 'function') missing.push(`${list.owner}.${m}()`);
    for (const f of list.fields) if (!(f in instance)) missing.push(`${list.owner}.${f}`);
  }
  return missing;
}

export interface PatchVerdict {
  patch: Patch;
  library: PinnedLibrary;
  installed: string;
  tested: string;
  /** whether Sluice's replacement runs (false: the library's own code) */
  enabled: boolean;
  missing: string[];
}

/** Verdicts that differ from "tested version, enabled", for the start-up warning. */
const warnings: PatchVerdict[] = [];

/**
 * Decides whether `patch` may run on the installed library. A speed patch runs only on the
 * tested version; a defence runs on any version that still has every member it uses.
 */
export function decide(patch: Patch, installed = installedVersion(PRIVATE_MEMBERS[patch].library)): PatchVerdict {
  const library = PRIVATE_MEMBERS[patch].library;
  const tested = TESTED_VERSIONS[library];
  const missing = missingMembers(patch);
  const speedOnly = patch === 'dataScan' || patch === 'dotStuff';
  const enabled = missing.length === 0 && (installed === tested || !speedOnly);
  const verdict: PatchVerdict = { patch, library, installed, tested, enabled, missing };
  if (installed !== tested || !enabled) warnings.push(verdict);
  return verdict;
}

/** What to warn about at start (nothing on the tested versions). */
export function untestedLibraries(): readonly PatchVerdict[] {
  return warnings;
}

/** One line per verdict, for the LIBRARY_UNTESTED warning. */
export function describeVerdict(v: PatchVerdict): string {
  const what = PATCH_PURPOSE[v.patch];
  const head = v.installed === v.tested ? `${v.library} ${v.installed} is not as tested` : `${v.library} ${v.installed} is installed; Sluice was tested with ${v.tested}`;
  if (v.enabled) return `${head}: ${what} kept (every private member it uses is present)`;
  if (v.patch === 'daneSocket') return `${head}: the TLS peer of a delivery cannot be read, so deliveries that require TLS or DANE fail (temporarily) (missing: ${v.missing.join(', ')})`;
  const why = v.missing.length ? ` (missing: ${v.missing.join(', ')})` : '';
  return `${head}: ${what} off, the library's own code runs${why}`;
}

const PATCH_PURPOSE: Record<Patch, string> = {
  dataScan: 'the fast end-of-DATA scan',
  dotStuff: 'the fast dot-stuffing of outgoing DATA',
  guards: 'the SMTP listener defences (per-client caps, shedding, deadlines, junk limits)',
  daneSocket: 'the DANE check of the TLS peer',
};

/** Logs one LIBRARY_UNTESTED warning per verdict; nothing on the tested versions. */
export function warnUntestedLibraries(logger: Logger): void {
  for (const v of warnings) {
    logger.warn({ event: 'LIBRARY_UNTESTED', library: v.library, installed: v.installed, tested: v.tested, patch: v.patch, enabled: v.enabled, missing: v.missing }, describeVerdict(v));
  }
}
