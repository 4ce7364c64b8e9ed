/**
 * The catalogue of every log event code Sluice writes. Each code is stable: log pipelines match
 * and alert on it. README's "Log events" tables list them all, and a test keeps the three in step
 * (test/docs/readme.test.ts): every code the code logs is here, every code here is logged
 * somewhere and has a README row.
 */

/** Events about one message: carry `id` and the fields that matter (sender, recipients, reply). */
export const MESSAGE_EVENTS = {
  QUEUED: 'a message was stored durably and acknowledged',
  NOQUEUE: 'a message was refused before it was stored (size, hook, policy)',
  STORE_FAILED: 'storing a message failed; the client got a temporary error',
  DELETED: 'a message was removed from the queue by an operator',
  DELIVERED: 'a recipient was accepted by the destination',
  DEFERRED: 'a delivery failed temporarily and will be retried',
  BOUNCED: 'a delivery failed permanently',
  DROPPED: 'a delivery was dropped without a bounce',
  HELD: 'an operator put deliveries on hold',
  RELEASED: 'an operator released held deliveries (due now)',
  GC: 'leftovers of interrupted ingests were collected',
  QUEUE_ID_TAKEN: "a new message's id was in the queue already; the message got 451, nothing was overwritten",
  BOUNCE_QUEUED: 'a bounce (DSN) to the sender was queued',
  DELAY_NOTICE_QUEUED: 'a "delayed" notice (DSN) to the sender was queued',
  SUCCESS_NOTICE_QUEUED: 'a success notice (DSN, NOTIFY=SUCCESS) to the sender was queued',
  RECEIVED: 'the inbound receiver stored a message for its inboxes',
  RECEIVE_FAILED: 'the inbound receiver could not store a message; the client got a temporary error',
} as const;

/** Events about the process and its parts: start and stop, workers, plugins, policies, stores. */
export const PROCESS_EVENTS = {
  STARTING: '`sluice run` read its config',
  QUEUE_OPENED: 'the queue database is open; its rows are counted in the background',
  QUEUE_LOADED: 'the rows found at start are counted',
  QUEUE_COUNT_FAILED: 'counting the rows found at start failed; the counts stay unavailable until a restart',
  LISTENING: 'a listener is up',
  STARTED: 'every listener is up',
  START_FAILED: 'start-up failed',
  STOPPING: 'a signal started the clean stop',
  STOP_WAITING: 'the clean stop is still waiting for something (every 5 s)',
  STOPPED: 'the clean stop finished',
  STOP_TIMEOUT: 'the clean stop took too long; exiting anyway',
  SIGHUP: 'a SIGHUP arrived while starting or stopping and changed nothing',
  RELOADED: 'a SIGHUP reloaded the config',
  RELOAD_FAILED: 'a SIGHUP found a config that would not start; the running config stays',
  AUTH_FAILED: 'an SMTP login failed',
  AUTH_BLOCKED: 'an address reached smtp.maxAuthFailures; its logins are refused for a while',
  HOOK_FAILED: 'a hook threw or timed out',
  HOOK_REJECTED: 'a plugin refused something on purpose',
  PLUGIN_LOADED: 'a plugin was loaded',
  PLUGIN_IDLE: 'a plugin registered no hook and no route in this process',
  PLUGIN_STOP_FAILED: "a plugin's stop handler failed",
  WORKER_STARTED: 'a delivery worker was forked',
  WORKER_READY: 'a worker connected to the data channel and takes work',
  WORKER_EXITED: 'a worker ended; it is restarted',
  WORKER_RETIRED: 'a worker replaced by a reload finished its deliveries and exited',
  CHANNEL_REFUSED: 'a data-channel connection was closed (wrong secret, or pushed out waiting for its hello)',
  CHANNEL_LOST: 'a worker lost its channel to the master and exits',
  LEASES_RELEASED: 'a worker left; its deliveries in flight are due again',
  LEASE_EXPIRED: 'a worker did not report within queue.leaseTimeout; it is told to cancel',
  LEASE_ABANDONED: 'a worker did not report within the grace either; its channel is closed',
  OUTCOME_WRITE_FAILED: 'a delivery result could not be written; it is written again later',
  OUTCOME_WRITTEN: 'a result that failed to be written is on disk now',
  QUEUE_OPERATION: 'an operator flushed, deleted, held or released rows in bulk',
  SUPPRESSION_ADDED: 'an address or domain was added to the suppression list',
  SUPPRESSION_REMOVED: 'an address or domain was removed from the suppression list',
  DKIM_KEYS_FAILED: 'a worker could not load a DKIM key',
  DKIM_KEY_WARNING: 'a DKIM key file is readable by others, or a key is weak',
  LIBRARY_UNTESTED: 'the installed smtp-server or nodemailer is not the version Sluice pins',
  WEBHOOK_FAILED: 'an event could not be posted after every retry',
  WEBHOOK_DROPPED: 'the event outbox was full; the oldest event was dropped',
  DANE_FAILED: "an MX host's certificate matched none of its TLSA records; the host was skipped",
  DANE_LOOKUP_FAILED: 'the TLSA lookup of an MX host in a signed zone failed; the host was skipped',
  MTA_STS_POLICY: "a domain's MTA-STS policy was fetched",
  MTA_STS_FETCH_FAILED: 'an MTA-STS policy could not be fetched',
  MTA_STS_REFUSED: 'MTA-STS enforce: an MX host not in the policy was skipped',
  MTA_STS_TESTING: 'MTA-STS testing: what enforce would have refused',
  BLOCKLIST_LOADED: 'the inbound blocklist file was read',
  BLOCKLIST_ENTRY_SKIPPED: 'a line of the blocklist is neither an address, a network nor a domain',
  PARSE_FAILED: 'a received message could not be parsed and stored; it is tried again',
  SPAM_MODEL_LOADED: "the inbox's spam model was read",
  SPAM_MODEL_MISSING: "there is no spam model file; the classifier's score is null",
  SPAM_MODEL_INVALID: 'the spam model file cannot be used; a model loaded before stays in use',
  RSPAMD_UNAVAILABLE: 'Rspamd failed; messages are stored without its score',
  RSPAMD_RECOVERED: 'Rspamd answers again after an outage',
  POP3_LOGIN: 'a POP3 client logged in to a private inbox',
  POP3_LOGIN_FAILED: 'a POP3 login failed',
  POP3_LOGIN_BLOCKED: 'an address reached inbound.pop3.maxLoginFailures; its POP3 logins are refused for a while',
  POP3_DELETED: 'a POP3 client quit after DELE: the messages left the inbox',
} as const;

export const LOG_EVENTS = { ...MESSAGE_EVENTS, ...PROCESS_EVENTS } as const;

export type LogEvent = keyof typeof LOG_EVENTS;
