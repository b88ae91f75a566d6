/** `settings show`, and the first-boot settings options `build` and `flash` share. */
import { Command } from 'commander';
import { DEFAULT_FLEET_NAME, FLEET_PASSWORD_ENV, KEYBOARD_LAYOUTS, readCardSettings, resolveSettings, WIFI_PSK_ENV, type Settings, type SettingsView } from '../settings/index.js';
import { json, type Io } from './output.js';

/** The options as commander gives them. */
export interface SettingsFlags {
  settings?: string;
  hostname?: string;
  timezone?: string;
  keyboard?: string;
  sshKey?: string[];
  wifi?: string;
  wifiPskFile?: string;
  wifiPriority?: string;
  wifiCountry?: string;
  fleet?: string;
  fleetName?: string;
  fleetGroup?: string[];
  fleetCa?: string;
  fleetKey?: string[];
  fleetCredentials?: string;
}

/** Add the settings options to a command (`flash` and `build`). */
export function settingsOptions(cmd: Command): Command {
  return cmd
    .option('--settings <file>', 'first-boot settings file (YAML or JSON: hostname, timezone, keyboard, sshKeys, wifi); options below override or add to it')
    .option('--hostname <name>', 'setting: host name of the board')
    .option('--timezone <zone>', 'setting: IANA time zone, e.g. Europe/Berlin')
    .option('--keyboard <layout>', `setting: keyboard layout of the screen console (${Object.keys(KEYBOARD_LAYOUTS).join(', ')})`)
    .option('--ssh-key <file...>', "setting: OpenSSH public key file(s) allowed to log in over SSH (added to the image's)")
    .option('--wifi <ssid>', `setting: a Wi-Fi network; its passphrase from --wifi-psk-file, $${WIFI_PSK_ENV}, or asked (never echoed; only its WPA PSK is stored)`)
    .option('--wifi-psk-file <file>', "setting: file whose first line is the --wifi network's passphrase")
    .option('--wifi-priority <n>', 'setting: priority of the --wifi network (higher is tried first)')
    .option('--wifi-country <cc>', 'setting: Wi-Fi regulatory country, e.g. DE, GB, US')
    .option('--fleet <url>', 'setting: join a fleet: the MQTT broker the board connects out to, mqtts://HOST:PORT (docs/fleet.md)')
    .option('--fleet-name <name>', `setting: the fleet's name (default ${DEFAULT_FLEET_NAME})`)
    .option('--fleet-group <name...>', 'setting: group(s) the board is in (fleet update --group)')
    .option('--fleet-ca <file>', "setting: the CA (PEM) the broker's certificate chains to; the board trusts no other for it")
    .option('--fleet-key <file...>', 'setting: public key(s) fleet jobs are signed with (nodeos-bsp keys create --name nodeos-fleet)')
    .option('--fleet-credentials <file>', `setting: file whose first line is the board's MQTT password (else $${FLEET_PASSWORD_ENV}; moved off the card at first boot, never printed)`);
}

/** Ask for a secret on the terminal without echoing it. */
export async function askSecret(io: Io, question: string): Promise<string> {
  const stdin = process.stdin;
  io.err(question);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      const onData = (chunk: Buffer): void => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            return resolve(text);
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            return reject(Object.assign(new Error('cancelled'), { code: 'EUSAGE' }));
          }
          if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
          else text += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    io.err('\n');
  }
}

/** The settings the options name, checked (ESETTINGS, EWIFI_PSK) before anything is written. */
export function settingsFrom(o: SettingsFlags, io: Io, extraKeyFiles: string[] = []): Promise<Settings> {
  const tty = Boolean(process.stdin.isTTY) && Boolean(process.stderr.isTTY);
  const keys = [...extraKeyFiles, ...(o.sshKey ?? [])];
  const priority = o.wifiPriority === undefined ? undefined : Number(o.wifiPriority);
  return resolveSettings(
    {
      ...(o.settings !== undefined ? { file: o.settings } : {}),
      ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
      ...(o.timezone !== undefined ? { timezone: o.timezone } : {}),
      ...(o.keyboard !== undefined ? { keyboard: o.keyboard } : {}),
      ...(keys.length ? { sshKeyFiles: keys } : {}),
      ...(o.wifi !== undefined ? { wifi: o.wifi } : {}),
      ...(o.wifiPskFile !== undefined ? { wifiPskFile: o.wifiPskFile } : {}),
      ...(priority !== undefined ? { wifiPriority: priority } : {}),
      ...(o.wifiCountry !== undefined ? { wifiCountry: o.wifiCountry } : {}),
      fleet: {
        ...(o.fleet !== undefined ? { broker: o.fleet } : {}),
        ...(o.fleetName !== undefined ? { name: o.fleetName } : {}),
        ...(o.fleetGroup !== undefined ? { groups: o.fleetGroup } : {}),
        ...(o.fleetCa !== undefined ? { caFile: o.fleetCa } : {}),
        ...(o.fleetKey !== undefined ? { keyFiles: o.fleetKey } : {}),
        ...(o.fleetCredentials !== undefined ? { credentialsFile: o.fleetCredentials } : {}),
      },
    },
    process.env,
    tty ? (q) => askSecret(io, q) : undefined,
  );
}

function fleetLines(f: SettingsView['fleet']): string[] {
  if (!f) return ['fleet         (none)'];
  if ('error' in f) return [`fleet         problem: ${f.error}`];
  return [
    `fleet         ${f.fleet} at ${f.broker}${f.groups.length ? `, groups ${f.groups.join(', ')}` : ''}`,
    `  broker CA   ${f.ca}`,
    ...f.keys.map((k) => `  job key     ${k}`),
    `  password    ${f.password === 'set' ? 'set' : 'not on the card (moved to the users\' partition at the first boot, or never given)'}`,
  ];
}

export function registerSettings(program: Command, io: Io): void {
  const settings = program
    .command('settings')
    .description('the first-boot settings on an image or a card')
    .addHelpText(
      'after',
      `
Settings are given to build and flash (--settings FILE, --hostname, --timezone, --ssh-key,
--wifi, --wifi-country, --fleet); see nodeos-bsp flash --help.

Examples:
  $ nodeos-bsp settings show out/nodeos-rpi3b.img
  $ nodeos-bsp flash out/nodeos-rpi3b.img -d /dev/sdb --settings site.yaml && nodeos-bsp settings show /dev/sdb`,
    );
  settings
    .command('show')
    .argument('<image|device>', 'a raw image (out/nodeos-<board>.img) or a card (/dev/sdb)')
    .description('show the settings an image or a card will apply at its first boot (secrets only as "set")')
    .option('--json', 'machine-readable')
    .addHelpText(
      'after',
      `
Read from the U-Boot environment on the boot partition (uboot.env, or its copy uboot.bak),
as the board's init reads it. Wi-Fi PSKs are never shown; SSH keys by fingerprint. After the
first boot the Wi-Fi networks are on the board's users' partition, no longer on the card.

Examples:
  $ nodeos-bsp settings show out/nodeos-rpi3b.img
  $ nodeos-bsp settings show /dev/sdb --json`,
    )
    .action((path: string, o: { json?: boolean }) => {
      const s = readCardSettings(path);
      if (o.json) return json(io, s);
      const lines = [
        `hostname      ${s.hostname ?? '(image default: nodeos)'}`,
        `timezone      ${s.timezone ?? '(not set: UTC)'}`,
        `keyboard      ${s.keyboard ?? '(not set: us)'}`,
        `wifi country  ${s.wifi.country ?? '(not set)'}`,
        `wifi          ${s.wifi.networks.length ? s.wifi.networks.map((n) => `${JSON.stringify(n.ssid)} (priority ${n.priority}, psk set)`).join(', ') : '(no network on the card)'}`,
        ...s.wifi.problems.map((p) => `  problem: ${p}`),
        `ssh keys      ${s.sshKeys.length ? '' : '(none)'}`,
        ...s.sshKeys.map((k) => `  ${k.type} ${k.fingerprint}${k.comment ? ` ${k.comment}` : ''}`),
        ...fleetLines(s.fleet),
        `bootargs      ${s.bootargs ?? ''}`,
        `(from ${s.from})`,
      ];
      io.out(lines.join('\n') + '\n');
    });
}
