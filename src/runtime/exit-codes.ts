/** Exit statuses the board's own processes give init. */

/** sshd.js: SSH is off on purpose (no authorized key), so init does not start it again. */
export const SSHD_OFF = 3;

/** fleet.js: the board is in no fleet, or cannot join it (said on the console), so init does not start it again. */
export const FLEET_OFF = 4;
