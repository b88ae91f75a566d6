/**
 * Every error the kit raises on purpose is a BspError: a string `code` a script can
 * match, a message that says what to do, typed fields, and `cause` when it wraps another.
 */
export class BspError extends Error {
  /** Machine-readable code, e.g. `EBOARD_UNKNOWN`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A board id that no profile in `boards/` declares. */
export class UnknownBoardError extends BspError {
  constructor(
    readonly boardId: string,
    readonly known: readonly string[],
  ) {
    super(
      'EBOARD_UNKNOWN',
      `unknown board "${boardId}"; known boards: ${known.join(', ') || '(none)'} (run "nodeos-bsp boards list")`,
    );
  }
}

/** One problem found in a profile: where it is and how to fix it. */
export interface ProfileFinding {
  /** Rule code, e.g. `EPROFILE_SCHEMA`. */
  code: string;
  /** The profile file the finding is about. */
  file: string;
  /** JSON-pointer-like path inside the profile (`/header/pins/3/line`), '' for the whole file. */
  path: string;
  /** What is wrong and what to do. */
  message: string;
  /** Board the finding was raised for, if any. */
  board?: string;
}

/** A profile (or set of profiles) that does not load or does not pass the checks. */
export class ProfileError extends BspError {
  constructor(readonly findings: readonly ProfileFinding[]) {
    const first = findings[0];
    const head = first ? `${first.file}${first.path ? ` ${first.path}` : ''}: ${first.message}` : 'invalid profile';
    const more = findings.length > 1 ? ` (and ${findings.length - 1} more finding(s))` : '';
    super(first?.code ?? 'EPROFILE_INVALID', head + more);
  }
}

/** A kernel config that lacks what the board's fragments require. */
export class KernelConfigError extends BspError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A bad command-line argument (wrong option value, missing operand). */
export class UsageError extends BspError {
  constructor(message: string) {
    super('EUSAGE', message);
  }
}

/**
 * A U-Boot environment problem: `EENV_CRC` (checksum mismatch), `EENV_SIZE` (storage and
 * size disagree), `EENV_FULL` (does not fit), `EENV_FORMAT` (malformed data or name),
 * `EENV_CONFIG` (bad fw_env.config), `EENV_NOT_FOUND` (no such variable), `EENV_VERIFY`
 * (read-back differs), `EENV_IO` (cannot read or write the storage).
 */
export class EnvError extends BspError {
  constructor(
    code: 'EENV_CRC' | 'EENV_SIZE' | 'EENV_FULL' | 'EENV_FORMAT' | 'EENV_CONFIG' | 'EENV_NOT_FOUND' | 'EENV_VERIFY' | 'EENV_IO',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** Stored CRC and computed CRC differ: the environment is corrupt (or not an environment). */
export class EnvCrcError extends EnvError {
  constructor(
    readonly actual: number,
    readonly expected: number,
    readonly where: string,
  ) {
    super(
      'EENV_CRC',
      `bad CRC in the U-Boot environment at ${where} (stored 0x${expected.toString(16).padStart(8, '0')}, computed 0x${actual.toString(16).padStart(8, '0')}): ` +
        'wrong size/offset or a corrupt environment; pass an explicit default to start from it',
    );
  }
}

/**
 * A download or verification problem: `EDOWNLOAD` (network/HTTP), `ETRUNCATED` (size
 * differs), `ECHECKSUM` (hash differs), `ESIGNATURE` (bad or missing signature),
 * `EOFFLINE` (needed but not cached), `EARTIFACT` (not found in the index).
 */
export class ArtifactError extends BspError {
  constructor(
    code: 'EDOWNLOAD' | 'ETRUNCATED' | 'ECHECKSUM' | 'ESIGNATURE' | 'EOFFLINE' | 'EARTIFACT',
    message: string,
    readonly artifact: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** A downloaded file whose hash is not the one its index or lock file promised. */
export class ChecksumError extends ArtifactError {
  constructor(
    artifact: string,
    readonly algorithm: string,
    readonly actual: string,
    readonly expected: string,
  ) {
    super('ECHECKSUM', `${artifact}: ${algorithm} is ${actual} but ${expected} was expected; the download was discarded (a bad mirror or a changed file: retry, or update the lock file)`, artifact);
  }
}

/**
 * A flashing problem. Refusals (nothing was written): `ESYSTEM_DRIVE`, `ETOO_SMALL`,
 * `EREAD_ONLY`, `ENOT_BLOCK`, `ELARGE_DRIVE`, `EMOUNTED`, `ENO_DEVICE`; bad sources (checked
 * before anything is written): `EBMAP`, `EBMAP_CHECKSUM`, `ESOURCE`, `ECHECKSUM`; after
 * writing: `EVERIFY` (read-back differs), `EWRITE`, `ECUSTOMIZE`.
 */
export class FlashError extends BspError {
  constructor(
    code: string,
    message: string,
    readonly device?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** Read-back verification found different bytes on the card. */
export class VerifyError extends FlashError {
  constructor(
    device: string,
    readonly offset: number,
  ) {
    super(
      'EVERIFY',
      `${device}: the data read back differs from the image, first at byte ${offset} (0x${offset.toString(16)}); the card or the card reader is the likely cause: try another reader or card`,
      device,
    );
  }
}
