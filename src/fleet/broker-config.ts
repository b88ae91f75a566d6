/**
 * A Mosquitto configuration for one fleet: TLS only, no anonymous clients, a password file,
 * and an ACL where a board (its user name is its board id) may publish only its own state,
 * online flag and job progress, and read only its own jobs and its groups' jobs. The
 * controller's user reads and writes the fleet's topics. EMQX and HiveMQ take the same
 * rules in their own syntax (docs/fleet.md).
 */
import { BspError } from '../errors.js';
import { checkName, TOPIC_ROOT } from './topics.js';

export interface BrokerConfigOptions {
  fleet: string;
  /** Boards and their groups. */
  boards: { board: string; groups: string[] }[];
  /** The controller's MQTT user name. Default `controller`. */
  controller?: string;
  port: number;
  /** Address to listen on. Default all (give 127.0.0.1 for a test broker). */
  bind?: string;
  /** PEM files: the CA boards pin, the broker's certificate and key. */
  cafile: string;
  certfile: string;
  keyfile: string;
  /** Written by mosquitto_passwd. */
  passwordFile: string;
  aclFile: string;
  /** Where Mosquitto keeps retained messages across restarts; none: in memory only. */
  persistenceDir?: string;
}

/** mosquitto.conf and the ACL file's text. */
export function mosquittoConfig(o: BrokerConfigOptions): { conf: string; acl: string } {
  const fleet = checkName('fleet', o.fleet);
  const controller = checkName('board', o.controller ?? 'controller');
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new BspError('EUSAGE', `--port ${o.port} is not a TCP port (1-65535)`);
  const seen = new Set<string>();
  for (const b of o.boards) {
    checkName('board', b.board);
    if (b.board === controller) throw new BspError('EUSAGE', `board ${b.board} has the controller's user name: choose another --controller`);
    if (seen.has(b.board)) throw new BspError('EUSAGE', `board ${b.board} is listed twice`);
    seen.add(b.board);
    for (const g of b.groups) checkName('group', g);
  }
  for (const f of [o.cafile, o.certfile, o.keyfile, o.passwordFile, o.aclFile, ...(o.persistenceDir ? [o.persistenceDir] : [])]) {
    if (/[\n\r\0]/.test(f)) throw new BspError('EUSAGE', `${JSON.stringify(f)}: a file name with a line break cannot go into mosquitto.conf`);
  }
  const base = `${TOPIC_ROOT}/${fleet}`;
  const conf = [
    `# Mosquitto for the NodeOS fleet "${fleet}" (nodeos-bsp fleet broker-config)`,
    'per_listener_settings false',
    'allow_anonymous false',
    `password_file ${o.passwordFile}`,
    `acl_file ${o.aclFile}`,
    ...(o.persistenceDir ? ['persistence true', `persistence_location ${o.persistenceDir.endsWith('/') ? o.persistenceDir : `${o.persistenceDir}/`}`] : ['persistence false']),
    '',
    `listener ${o.port}${o.bind ? ` ${o.bind}` : ''}`,
    `cafile ${o.cafile}`,
    `certfile ${o.certfile}`,
    `keyfile ${o.keyfile}`,
    'tls_version tlsv1.2',
    '',
  ].join('\n');
  const acl = [
    `# Who may do what in the fleet "${fleet}": boards log in with their board id as user name.`,
    '',
    '# The controller (fleet status, fleet update).',
    `user ${controller}`,
    `topic readwrite ${base}/#`,
    '',
    "# Every board: its own state, online flag and job progress; its own jobs.",
    `pattern write ${base}/%u/state`,
    `pattern write ${base}/%u/online`,
    `pattern write ${base}/%u/jobs/progress`,
    `pattern read ${base}/%u/jobs`,
    '',
    '# Each board: its groups\' jobs.',
    ...o.boards.filter((b) => b.groups.length).flatMap((b) => [`user ${b.board}`, ...b.groups.map((g) => `topic read ${base}/group/${g}/jobs`), '']),
  ].join('\n');
  return { conf, acl };
}
