/** The board's host name, from the kernel command line. */

/**
 * The host name: `nodeos.hostname=` from the kernel command line (set by `flash --hostname`),
 * else "nodeos"; written to the kernel (os.hostname()) and /etc/hostname.
 */
export function hostnameFrom(cmdline: string): { name: string; warning?: string } {
  const given = /(?:^|\s)nodeos\.hostname=(\S+)/.exec(cmdline)?.[1];
  if (given === undefined) return { name: 'nodeos' };
  if (/^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/.test(given)) return { name: given };
  return { name: 'nodeos', warning: `nodeos.hostname=${given} is not a valid host name (1-63 letters, digits, dashes): using "nodeos"` };
}
