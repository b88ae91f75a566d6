/** The board on the network: DHCP, SNTP, system files, USB gadget Ethernet, SSH keys. */
export { bytesToIp, decodeDhcp, encodeDhcp, ipToBytes, isDnsName, leaseFrom, DhcpType, Opt, opt, type DhcpMessage, type DhcpTypeName, type Lease } from './dhcp-packet.js';
export { backoffMs, DhcpClient, MAX_TIMER_MS, systemClock, udpTransport, type Clock, type DhcpClientOptions, type DhcpEvent, type DhcpState, type DhcpTransport } from './dhcp-client.js';
export { certificateProblem, clockFloor, httpDate, ntpServer, parseSntpReply, readNtpTime, sntpQuery, sntpRequest, SntpError, writeNtpTime, type ClockSample } from './sntp.js';
export { applyLeaseCommands, broadcastRouteCommand, expireLeaseCommands, hostsFile, NSSWITCH_CONF, removeLeaseCommands, resolvConf } from './system-files.js';
export { logText } from './log-text.js';
export { DhcpServer, type DhcpServerOptions } from './dhcp-server.js';
export { setupUsbGadget, stableMac, type UsbGadget, type UsbGadgetOptions } from './usb-gadget.js';
export { ENV_SSH_KEYS, fingerprint, loadSshKeyFiles, newHostKey, parseAuthorizedKeys, parsePublicKeyLine, readSshKeyFiles, USER_KEY_TYPES, type PublicKey } from './ssh-keys.js';
export { ipArgument, netmaskPrefix, parseIpConfig, type IpConfig } from './ip-config.js';
export { openSubsystem, rebootOverSsh, sshDestination, sshOptions, subsystemArgs, type SshClientOptions, type SubsystemSession } from './ssh-client.js';
