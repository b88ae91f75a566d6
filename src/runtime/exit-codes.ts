/** Exit statuses the board's own processes give init. */

/** sshd.js: SSH is off on purpose (no authorized key), so init does not start it again. */
export const SSHD_OFF = 3;
