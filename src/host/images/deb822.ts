// Debian control-file syntax (deb822), as used by Packages and Release indexes and by apt's
// *.sources files: stanzas separated by blank lines, "Field: value" lines, continuation lines
// starting with a space or tab, "#" comment lines (allowed in .sources files only, harmless
// elsewhere). Field names are case-insensitive (Debian Policy 5.1), so they are kept lower-cased.

export type Stanza = Map<string, string>;

// Parses one stanza. Continuation lines are joined with "\n" and keep no leading blank, except
// that a lone "." (an empty line inside a multi-line value) becomes an empty line.
export function parseStanza(text: string): Stanza {
  const fields: Stanza = new Map();
  let current: string | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "" || line.startsWith("#")) continue;
    if (line[0] === " " || line[0] === "\t") {
      if (current === undefined) continue;
      const cont = line.trim();
      fields.set(current, `${fields.get(current)}\n${cont === "." ? "" : cont}`);
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    current = line.slice(0, colon).trim().toLowerCase();
    fields.set(current, line.slice(colon + 1).trim());
  }
  return fields;
}

// Splits a file into stanzas; a line of only whitespace also separates stanzas.
export function parseStanzas(text: string): Stanza[] {
  return text
    .split(/\r?\n[ \t]*\r?\n/)
    .map(parseStanza)
    .filter((s) => s.size > 0);
}

// Multi-value fields (Suites, URIs, Types, Components) are whitespace-separated.
export function words(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(/\s+/).filter((w) => w !== "");
}
