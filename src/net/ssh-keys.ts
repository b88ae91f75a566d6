/**
 * SSH keys without OpenSSH: parsing `authorized_keys` lines (RFC 4253 public key blobs),
 * fingerprints as `ssh-keygen -l` prints them, and the board's host key written in
 * OpenSSH's private key format (PROTOCOL.key), which ssh2 and ssh-keygen read.
 *
 * Used by build and flash (checking `--ssh-key` files) and by the board (its SSH server).
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BspError } from '../errors.js';

/** The U-Boot variable that carries the keys given at build or flash time, one per line. */
export const ENV_SSH_KEYS = 'nodeos_ssh_keys';

/** Key types the board's SSH server (ssh2) accepts for users. */
export const USER_KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'] as const;

/** One public key of an `authorized_keys` file or a `.pub` file. */
export interface PublicKey {
  type: string;
  /** The key blob (what the client sends when it offers the key). */
  blob: Buffer;
  comment: string;
  /** The line as `type base64 comment`, without options. */
  line: string;
}

/** Read an SSH string (uint32 length + bytes) at `pos`. */
function sshString(buf: Buffer, pos: number): { value: Buffer; next: number } | undefined {
  if (pos + 4 > buf.length) return undefined;
  const len = buf.readUInt32BE(pos);
  if (pos + 4 + len > buf.length) return undefined;
  return { value: buf.subarray(pos + 4, pos + 4 + len), next: pos + 4 + len };
}

function str(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

/**
 * Parse one line as a public key, or say why it is not one. Options before the key type
 * (`from="..."`, `command="..."`) are not supported by the board and make the line invalid,
 * so no key is ever accepted with weaker rules than its owner wrote.
 */
export function parsePublicKeyLine(line: string): PublicKey | { error: string } {
  const text = line.trim();
  if (/PRIVATE KEY/.test(text)) return { error: 'this is a private key: give the public key (the .pub file next to it)' };
  const fields = text.split(/\s+/);
  const [type, b64] = fields;
  if (!type || !b64) return { error: 'not an OpenSSH public key line ("TYPE BASE64 [COMMENT]")' };
  if (!(USER_KEY_TYPES as readonly string[]).includes(type)) {
    if (/^[a-z0-9-]+(@[a-z0-9.-]+)?$/.test(type) && /^[A-Za-z0-9+/=]{16,}$/.test(b64)) return { error: `key type ${type} is not supported by the board (use one of ${USER_KEY_TYPES.join(', ')})` };
    return { error: 'not an OpenSSH public key line (options before the key type are not supported)' };
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return { error: 'the key is not valid base64' };
  const blob = Buffer.from(b64, 'base64');
  const inner = sshString(blob, 0);
  if (!inner || inner.value.toString('latin1') !== type) return { error: `the key blob does not start with its type ${type} (a damaged or truncated key)` };
  const comment = fields.slice(2).join(' ');
  return { type, blob, comment, line: `${type} ${b64}${comment ? ` ${comment}` : ''}` };
}

/** The keys of an authorized_keys text; comments and blank lines are skipped, bad lines reported. */
export function parseAuthorizedKeys(text: string): { keys: PublicKey[]; errors: { line: number; error: string }[] } {
  const keys: PublicKey[] = [];
  const errors: { line: number; error: string }[] = [];
  text.split(/\r?\n/).forEach((l, i) => {
    if (!l.trim() || l.trim().startsWith('#')) return;
    const k = parsePublicKeyLine(l);
    if ('error' in k) errors.push({ line: i + 1, error: k.error });
    else if (!keys.some((o) => o.blob.equals(k.blob))) keys.push(k);
  });
  return { keys, errors };
}

/**
 * Read `--ssh-key` files for build and flash: every key in each file (a .pub or an
 * authorized_keys file), each checked. Key material is never put in an error message.
 */
export function readSshKeyFiles(files: readonly { path: string; text: string }[]): PublicKey[] {
  const out: PublicKey[] = [];
  for (const f of files) {
    const { keys, errors } = parseAuthorizedKeys(f.text);
    if (errors.length) throw new BspError('ESSH_KEY', `${f.path} line ${errors[0]!.line}: ${errors[0]!.error}`);
    if (!keys.length) throw new BspError('ESSH_KEY', `${f.path} holds no public key: give an OpenSSH public key file (e.g. ~/.ssh/id_ed25519.pub)`);
    for (const k of keys) if (!out.some((o) => o.blob.equals(k.blob))) out.push(k);
  }
  return out;
}

/** {@link readSshKeyFiles} on files named by the user (`--ssh-key`). */
export function loadSshKeyFiles(paths: readonly string[]): PublicKey[] {
  return readSshKeyFiles(
    paths.map((path) => {
      try {
        return { path, text: readFileSync(path, 'utf8') };
      } catch (err) {
        throw new BspError('ESSH_KEY', `cannot read the SSH key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      }
    }),
  );
}

/** `SHA256:...` as `ssh-keygen -l` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The SSH public key blob of an Ed25519 key. */
function ed25519Blob(pub: KeyObject): Buffer {
  const raw = Buffer.from(pub.export({ format: 'jwk' }).x!, 'base64url');
  return Buffer.concat([str('ssh-ed25519'), str(raw)]);
}

/** A new Ed25519 host key in OpenSSH's private key format (unencrypted), with its public line. */
export function newHostKey(comment = ''): { privateKey: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return ed25519ToOpenSsh(privateKey, comment);
}

/** Write an Ed25519 private key as `-----BEGIN OPENSSH PRIVATE KEY-----` (PROTOCOL.key). */
export function ed25519ToOpenSsh(key: KeyObject, comment = ''): { privateKey: string; publicKey: string } {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || !jwk.d) throw new BspError('ESSH_KEY', 'not an Ed25519 private key');
  const seed = Buffer.from(jwk.d, 'base64url');
  const pub = Buffer.from(jwk.x!, 'base64url');
  const blob = ed25519Blob(createPublicKey(key));
  const check = randomBytes(4);
  let priv = Buffer.concat([check, check, str('ssh-ed25519'), str(pub), str(Buffer.concat([seed, pub])), str(comment)]);
  // Padded with 1, 2, 3... to the cipher's block size (8 for "none").
  const pad = (8 - (priv.length % 8)) % 8;
  priv = Buffer.concat([priv, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), str('none'), str('none'), str(''), Buffer.from([0, 0, 0, 1]), str(blob), str(priv)]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return { privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`, publicKey: `ssh-ed25519 ${blob.toString('base64')}${comment ? ` ${comment}` : ''}` };
}

/** The public line of an OpenSSH-format Ed25519 private key written by {@link ed25519ToOpenSsh}. */
export function openSshPublicLine(privateKey: string): string {
  const b64 = privateKey.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const body = Buffer.from(b64, 'base64');
  const magic = 'openssh-key-v1\0';
  if (body.subarray(0, magic.length).toString('latin1') !== magic) throw new BspError('ESSH_KEY', 'not an OpenSSH private key');
  let pos = magic.length;
  for (let i = 0; i < 3; i++) pos = sshString(body, pos)?.next ?? -1;
  if (pos < 0 || body.readUInt32BE(pos) !== 1) throw new BspError('ESSH_KEY', 'an OpenSSH private key with other than one key');
  const blob = sshString(body, pos + 4);
  if (!blob) throw new BspError('ESSH_KEY', 'a truncated OpenSSH private key');
  const type = sshString(blob.value, 0)!.value.toString('latin1');
  return `${type} ${blob.value.toString('base64')}`;
}
