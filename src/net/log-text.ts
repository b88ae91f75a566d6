/**
 * Words from the network, as a log line may show them: every byte that is not printable
 * ASCII escaped (\n, \x1b, \u00e9...), so a peer can neither add lines ("root logged in")
 * nor move the cursor of the console the log is on, and cut to a length a log line keeps.
 */
export function logText(s: string, max = 120): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x100) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += `\\u{${c.toString(16)}}`;
    if (out.length >= max) return `${out.slice(0, max)}...`;
  }
  return out;
}
