/** The `code` of what `fn` throws (BspError and friends), or its text; undefined when it does not throw. */
export function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  return undefined;
}

/** What `fn` throws, as a code and a message; fails the test when it does not throw. */
export function thrownError(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { code: e.code ?? String(err), message: e.message ?? String(err) };
  }
  throw new Error(`expected ${fn.toString().slice(0, 120)} to throw`);
}
