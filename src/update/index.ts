/** A/B updates: signing keys, update bundles, and installing one into the slot not running. */
export { createKeyPair, keyId, loadSigningKey, parseTrustedKeys, trustedKey, TRUSTED_KEYS_PATH, type TrustedKey } from './keys.js';
export { BUNDLE_FILES, BUNDLE_FORMAT, checkCompatible, openBundle, verifyBundle, writeBundle, type Bundle, type BundleFile, type BundleHeader } from './bundle.js';
export { checkBundle, downgradeProblem, installBundle, type InstallResult, type InstallStep, type SlotTarget } from './install.js';
export { sshArgs, updateOverSsh, UPDATE_SUBSYSTEM, type RemoteUpdateOptions } from './remote.js';
