/**
 * Update signing keys: Ed25519 (Node's crypto, nothing to install). The private key stays
 * with whoever builds (PKCS#8 PEM, mode 0600, never printed); the image carries the public
 * keys it trusts in its system slot (/etc/nodeos/update-keys.json).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BspError } from '../errors.js';

/** Where the system slot keeps the keys it accepts updates from. */
export const TRUSTED_KEYS_PATH = 'etc/nodeos/update-keys.json';

/** A public key as the image carries it. */
export interface TrustedKey {
  /** `SHA256:<base64>` of the SubjectPublicKeyInfo, as OpenSSH prints fingerprints. */
  id: string;
  /** SPKI PEM. */
  pem: string;
}

/** A key's fingerprint. */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return `SHA256:${createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('base64').replace(/=+$/, '')}`;
}

/** Make a key pair in `dir`: nodeos-update.key (private, 0600) and nodeos-update.pub. Never overwrites. */
export function createKeyPair(dir: string, name = 'nodeos-update'): { privateKey: string; publicKey: string; id: string } {
  const privateKey = join(dir, `${name}.key`);
  const publicKey = join(dir, `${name}.pub`);
  for (const p of [privateKey, publicKey]) if (existsSync(p)) throw new BspError('EKEY_EXISTS', `${p} already exists: keep it (boards trust it) or choose another --out`);
  const { privateKey: priv, publicKey: pub } = generateKeyPairSync('ed25519');
  mkdirSync(dir, { recursive: true });
  writeFileSync(privateKey, priv.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  writeFileSync(publicKey, pub.export({ type: 'spki', format: 'pem' }), { mode: 0o644, flag: 'wx' });
  return { privateKey, publicKey, id: keyId(pub) };
}

/** Read a signing (private) key file: EKEY when it is missing or not an Ed25519 private key. */
export function loadSigningKey(path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(path));
  } catch (err) {
    throw new BspError('EKEY', `${path} is not a readable private key (${(err as Error).message.split('\n')[0]}): make one with nodeos-bsp keys create`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new BspError('EKEY', `${path} is a ${key.asymmetricKeyType} key; update signing keys are Ed25519 (nodeos-bsp keys create)`);
  return key;
}

/** The public half, as the image carries it. */
export function trustedKey(key: KeyObject): TrustedKey {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return { id: keyId(pub), pem: pub.export({ type: 'spki', format: 'pem' }).toString() };
}

/** Parse update-keys.json. */
export function parseTrustedKeys(text: string): TrustedKey[] {
  const v = JSON.parse(text) as { keys?: TrustedKey[] };
  return (v.keys ?? []).filter((k) => typeof k.id === 'string' && typeof k.pem === 'string');
}
