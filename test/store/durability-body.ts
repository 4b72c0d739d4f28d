/**
 * Bodies for the durability test: every line names its version, so a body that mixed two versions (a torn
 * write) can never equal `bodyFor` of either.
 */
export function bodyFor(version: number, chars: number): string {
  const lines: string[] = [`v${version}`];
  let length = lines[0].length;
  for (let line = 0; length < chars; line++) {
    const text = `version ${version}, line ${line}: the quick brown fox jumps over the lazy dog.`;
    lines.push(text);
    length += text.length + 1;
  }
  return lines.join('\n');
}

/** The version a body was made for; 0 for a body `bodyFor` did not make. */
export function versionOf(body: string): number {
  const match = /^v(\d+)\n/.exec(body);
  return match ? Number(match[1]) : 0;
}
