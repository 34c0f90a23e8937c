// VM spec files (src/vm/spec.ts): defaults filled in from the schema, JSON accepted as YAML's
// subset, and every mistake named by its file and field in one readable line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_CMDLINE, DEFAULT_WEIGHT, MAX_CPUS, MAX_MEM_MIB, MIN_MEM_MIB, VIRT_MODES, VmSpecSchema, parseSpec, validateSpec } from "../../src/vm/spec.js";
import { UserError } from "../../src/errors.js";
import { ROOT } from "../helpers.js";

function refused(text: string, pattern: RegExp, where = "web.yaml"): string {
  let message = "";
  assert.throws(() => parseSpec(text, where), (e: unknown) => {
    assert.ok(e instanceof UserError, `a UserError, not ${String(e)}`);
    message = e.message;
    return true;
  });
  assert.match(message, pattern);
  assert.ok(!message.includes("\n"), `one line: ${JSON.stringify(message)}`);
  assert.ok(message.startsWith(where), `names the file first: ${message}`);
  return message;
}

test("a spec with only a name gets every default, from the schema", () => {
  const s = parseSpec("name: web\n", "web.yaml");
  assert.deepEqual(s, {
    name: "web", memory: 512, vcpus: 1, cmdline: DEFAULT_CMDLINE, virt: "trap-and-emulate",
    weight: DEFAULT_WEIGHT, cap: 0, dedicated: false, disks: [], nics: [], shares: [], rng: true, balloon: true,
  });
  assert.equal(s.kernel, undefined, "no kernel: the default Debian guest");
  assert.equal(s.initrd, undefined);
  // The schema documents the same defaults it fills in.
  const props = VmSpecSchema.properties as Record<string, { default?: unknown }>;
  assert.equal(props.memory!.default, 512);
  assert.equal(props.cmdline!.default, DEFAULT_CMDLINE);
});

test("given values are kept, paths untouched", () => {
  const s = parseSpec(
    "name: db-1\nmemory: 128\nvcpus: 2\nkernel: ./Image\ninitrd: initrd.gz\ncmdline: console=ttyS0 quiet\nvirt: native\nweight: 512\ncap: 50\ndedicated: true\n" +
      "disks:\n  - disk: ../base.qcow2\n    readonly: true\n  - disk: data\nrng: false\nnics:\n  - forward: [\"2222:22\"]\n  - network: switch\n",
    "db.yaml",
  );
  assert.deepEqual(s, {
    name: "db-1", memory: 128, vcpus: 2, kernel: "./Image", initrd: "initrd.gz", cmdline: "console=ttyS0 quiet", virt: "native", weight: 512, cap: 50, dedicated: true,
    disks: [{ disk: "../base.qcow2", readonly: true }, { disk: "data", readonly: false }], rng: false, balloon: true, shares: [],
    nics: [{ network: "nat", forward: ["2222:22"] }, { network: "switch", forward: [] }],
  });
});

test("JSON is accepted, with the same defaults", () => {
  const s = parseSpec('{ "name": "api", "memory": 256, "vcpus": 2 }', "api.json");
  assert.equal(s.memory, 256);
  assert.equal(s.vcpus, 2);
  assert.equal(s.virt, "trap-and-emulate");
  assert.equal(s.weight, DEFAULT_WEIGHT);
});

test("validateSpec does not change the caller's data", () => {
  const data = { name: "web" };
  const s = validateSpec(data, "api");
  assert.deepEqual(data, { name: "web" });
  assert.equal(s.memory, 512);
});

test("unknown fields are refused by name, a near miss with the field meant", () => {
  refused("name: web\nmemroy: 128\n", /^web\.yaml: unknown field 'memroy' \(did you mean 'memory'\?\)$/);
  refused("name: web\nCPUs: 2\n", /unknown field 'CPUs' \(did you mean 'vcpus'\?\)$/);
  refused("name: web\ndisk: 10G\n", /unknown field 'disk' \(did you mean 'disks'\?\)$/);
  refused("name: web\nnet: user\n", /unknown field 'net'; the fields are name, memory, vcpus, kernel, initrd, cmdline, virt, weight, cap, dedicated, disks, nics, shares, rng, balloon$/);
  refused("name: web\nfoo: 1\nbar: 2\n", /unknown fields 'foo', 'bar'; the fields are name, /);
});

test("a missing name is refused", () => {
  refused("memory: 128\n", /^web\.yaml: missing field 'name'$/);
});

test("wrong types are named by field, with what was given", () => {
  refused("name: web\nmemory: lots\n", /field 'memory' must be a whole number, got "lots"$/);
  refused("name: web\nmemory: 12.5\n", /field 'memory' must be a whole number, got 12\.5$/);
  refused('name: web\nmemory: "128"\n', /field 'memory' must be a whole number, got "128"/);
  refused("name: web\nmemory:\n", /field 'memory' must be a whole number, got nothing \(null\)/);
  refused("name: web\ndedicated: yes\n", /field 'dedicated' must be true or false, got "yes"/);
  refused("name: web\ncmdline: 5\n", /field 'cmdline' must be a string, got 5/);
  refused("name: 42\n", /field 'name' must be a string, got 42/);
  refused("name: web\nvcpus: [1, 2]\n", /field 'vcpus' must be a whole number, got a list/);
});

test("values out of range are named by field, with the limit and its unit", () => {
  refused(`name: web\nmemory: ${MIN_MEM_MIB - 8}\n`, new RegExp(`field 'memory' must be at least ${MIN_MEM_MIB} MiB, got ${MIN_MEM_MIB - 8}$`));
  refused(`name: web\nmemory: ${MAX_MEM_MIB + 1}\n`, new RegExp(`field 'memory' must be at most ${MAX_MEM_MIB} MiB, got ${MAX_MEM_MIB + 1}$`));
  refused("name: web\nvcpus: 0\n", /field 'vcpus' must be at least 1, got 0$/);
  refused(`name: web\nvcpus: ${MAX_CPUS + 1}\n`, new RegExp(`field 'vcpus' must be at most ${MAX_CPUS}, got ${MAX_CPUS + 1}$`));
  refused("name: web\ncap: -1\n", /field 'cap' must be at least 0 percent of one physical CPU, got -1$/);
  refused("name: web\nweight: 0\n", /field 'weight' must be at least 1, got 0$/);
  refused("name: web\nkernel: ''\n", /field 'kernel' must not be empty$/);
  refused("name: Web!\n", /field 'name' must be 1 to 63 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit, got "Web!"$/);
  refused(`name: ${"a".repeat(64)}\n`, /field 'name' must be 1 to 63/);
});

test("every problem is reported at once, one per field", () => {
  const m = refused("name: web\nweight: 0\ncap: 2000\nmemory: 1.5\n", /;/);
  assert.match(m, /field 'weight' must be at least 1/);
  assert.match(m, /field 'cap' must be at most 800 percent of one physical CPU/);
  assert.match(m, /field 'memory' must be a whole number, got 1\.5/);
  assert.doesNotMatch(m, /memory' must be at least/, "one problem per field");
});

test("virt names the modes there are", () => {
  refused("name: web\nvirt: kvm\n", new RegExp(`field 'virt' must be one of ${VIRT_MODES.join(", ")}, got "kvm"$`));
});

test("a file that is not a mapping says what a spec is", () => {
  refused("", /^web\.yaml is empty: a spec needs at least a name/);
  refused("# only a comment\n", /^web\.yaml is empty/);
  refused("- web\n- db\n", /^web\.yaml: a spec is a mapping of fields .*, not a list$/);
  refused("just words\n", /^web\.yaml: a spec is a mapping of fields .*, not a string$/);
});

test("bad YAML is reported with the file name, line and column", () => {
  refused("name: [web\nmemory: 128\n", /^web\.yaml:\d+:\d+: not valid YAML or JSON: Flow sequence .* end with a \]$/);
  refused("name: web\nname: db\n", /^web\.yaml:2:1: not valid YAML or JSON: a field is given twice$/);
  refused("name: web\n---\nname: db\n", /^web\.yaml:\d+:\d+: not valid YAML or JSON: more than one document/);
  refused('{ "name": "web", "memory": 128\n', /^web\.json:\d+:\d+: not valid YAML or JSON/, "web.json");
  refused("name: web\n\tmemory: 128\n", /^web\.yaml:2:\d+: not valid YAML or JSON: Tabs are not allowed as indentation$/);
});

test("the example specs in examples/ are valid", () => {
  const dir = join(ROOT, "examples");
  const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));
  assert.ok(files.length > 0);
  for (const f of files) {
    const s = parseSpec(readFileSync(join(dir, f), "utf8"), f);
    assert.equal(s.name, f.replace(/\.\w+$/, ""), `${f} names its VM after the file`);
  }
});

test("the README shows examples/web.yaml as it is", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  assert.ok(readme.includes("```yaml\n" + readFileSync(join(ROOT, "examples", "web.yaml"), "utf8") + "```"), "README's spec example is examples/web.yaml");
});

test("shares: a folder and its tag, read-only unless rw; a bad tag or an unknown key is named", () => {
  const s = parseSpec("name: web\nshares:\n  - dir: ./site\n    tag: site\n  - dir: /srv/data\n    tag: data\n    rw: true\n", "web.yaml");
  assert.deepEqual(s.shares, [{ dir: "./site", tag: "site", rw: false }, { dir: "/srv/data", tag: "data", rw: true }]);
  refused("name: web\nshares:\n  - dir: ./site\n    tag: 'has space'\n", /field 'shares\.0\.tag'/);
  refused("name: web\nshares:\n  - dir: ./site\n    tag: site\n    mode: rw\n", /unknown field 'mode' in 'shares\.0'; the fields of 'shares\.0' are dir, tag, rw$/);
});
