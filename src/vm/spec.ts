// A VM's spec: what a user writes (YAML or JSON) to describe one VM, validated against one schema
// that also documents it (the daemon's API will serve the same schema). Errors name the field and
// are worded from the schema itself (its limits, units, allowed values and field list), so a new
// field or limit needs no new message.
import { Type, type Static } from "typebox";
import { Ajv, type ErrorObject } from "ajv";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { UserError } from "../errors.js";

export const VIRT_MODES = ["native", "trap-and-emulate", "bt"] as const;
export type VirtMode = (typeof VIRT_MODES)[number];
// vCPUs per VM this board offers.
export const MAX_CPUS = 8;
export const MIN_MEM_MIB = 16;
// Guest RAM lives in one 32-bit wasm memory (4 GiB) together with the hypervisor's own structures.
export const MAX_MEM_MIB = 3584;
export const DEFAULT_WEIGHT = 256;
// The default guest's console is the 16550; earlycon shows the kernel's first words through SBI,
// and a panic reboots at once (the run then ends) instead of hanging.
export const DEFAULT_CMDLINE = "console=ttyS0 earlycon=sbi panic=-1";

// A VM's name: it also names files (console logs, control sockets), so no '/' and no leading '.'.
export const VM_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
export const VM_NAME_EXPECTED = "1 to 63 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit";

// Annotations beyond JSON Schema, used only for messages: `unit` follows a number, `expected`
// says in words what a `pattern` means.
export const VmSpecSchema = Type.Object(
  {
    name: Type.String({
      pattern: VM_NAME.source,
      expected: VM_NAME_EXPECTED,
      description: "unique within a host; also names the VM's console log",
    }),
    memory: Type.Integer({ minimum: MIN_MEM_MIB, maximum: MAX_MEM_MIB, default: 512, unit: "MiB", description: "guest RAM in MiB" }),
    vcpus: Type.Integer({ minimum: 1, maximum: MAX_CPUS, default: 1, description: "virtual CPUs" }),
    kernel: Type.Optional(Type.String({ minLength: 1, description: "a RISC-V Linux Image or ELF, relative to the spec file; default: the Debian guest" })),
    initrd: Type.Optional(Type.String({ minLength: 1, description: "initial ramdisk, relative to the spec file; default: the Debian guest's when kernel is not given, else none" })),
    cmdline: Type.String({ default: DEFAULT_CMDLINE, description: "kernel command line" }),
    virt: Type.Union(VIRT_MODES.map((m) => Type.Literal(m)), { default: "trap-and-emulate", description: "how the guest is run" }),
    weight: Type.Integer({ minimum: 1, maximum: 65535, default: DEFAULT_WEIGHT, description: "proportional share of CPU against other VMs" }),
    cap: Type.Integer({ minimum: 0, maximum: 100 * MAX_CPUS, default: 0, unit: "percent of one physical CPU", description: "most CPU the VM may use, in percent of one physical CPU; 0 = no cap" }),
    dedicated: Type.Boolean({ default: false, description: "each vCPU gets a physical CPU of its own" }),
    disks: Type.Array(
      Type.Object(
        {
          disk: Type.String({ minLength: 1, description: "a disk in the disk store (ringvisor disk ls) or an image file, raw or qcow2, relative to the spec file" }),
          readonly: Type.Boolean({ default: false, description: "the guest may only read it" }),
        },
        { additionalProperties: false },
      ),
      { default: [], maxItems: 7, description: "virtio disks, /dev/vda on, in order" },
    ),
    nics: Type.Array(
      Type.Object(
        {
          network: Type.Union([Type.Literal("nat"), Type.Literal("switch")], {
            default: "nat",
            description: "nat: the VM's own user-mode NAT to the outside (DHCP, DNS, the host at 10.0.2.2); switch: the host's virtual switch, shared with the other VMs on it",
          }),
          forward: Type.Array(
            Type.String({ pattern: "^[0-9]{1,5}:[0-9]{1,5}$", expected: "HOST_PORT:GUEST_PORT, e.g. 2222:22" }),
            { default: [], description: "TCP ports on the host's loopback forwarded into the guest (nat only)" },
          ),
        },
        { additionalProperties: false },
      ),
      { default: [], maxItems: 4, description: "virtio network cards, eth0 on, in order" },
    ),
    shares: Type.Array(
      Type.Object(
        {
          dir: Type.String({ minLength: 1, description: "a host folder, relative to the spec file" }),
          tag: Type.String({ pattern: "^[A-Za-z0-9_.-]{1,64}$", expected: "1 to 64 letters, digits, '-', '_' or '.'", description: "the mount tag: mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt" }),
          rw: Type.Boolean({ default: false, description: "the guest may change the folder" }),
        },
        { additionalProperties: false },
      ),
      { default: [], maxItems: 4, description: "host folders shared over virtio-9p" },
    ),
    rng: Type.Boolean({ default: true, description: "a virtio entropy device (/dev/hwrng)" }),
    balloon: Type.Boolean({ default: true, description: "a virtio balloon, through which the host can take RAM back while the VM runs" }),
  },
  { additionalProperties: false },
);

export type VmSpec = Static<typeof VmSpecSchema>;
export type VmSpecInput = Partial<VmSpec> & { name: string };

// verbose: errors carry the offending value and their schema, which the messages quote.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
const check = ajv.compile<VmSpec>(VmSpecSchema);
const FIELDS = Object.keys(VmSpecSchema.properties);

// Validates (and fills in defaults of) a spec given as data; `where` names its source in errors.
export function validateSpec(data: unknown, where = "spec"): VmSpec {
  if (data === null || data === undefined) throw new UserError(`${where} is empty: a spec needs at least a name (name: my-vm)`);
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new UserError(`${where}: a spec is a mapping of fields (name: my-vm, memory: 512, ...), not ${Array.isArray(data) ? "a list" : `a ${typeof data}`}`);
  }
  const copy = structuredClone(data);
  if (check(copy)) return copy;
  throw new UserError(`${where}: ${problems(check.errors ?? []).join("; ")}`);
}

export function parseSpec(text: string, where: string): VmSpec {
  let data: unknown;
  try {
    data = parseYaml(text); // YAML is a superset of JSON
  } catch (e) {
    if (!(e instanceof YAMLParseError)) throw e;
    const pos = e.linePos?.[0];
    const at = pos ? `${where}:${pos.line}:${pos.col}` : where;
    throw new UserError(`${at}: not valid YAML or JSON: ${yamlProblem(e)}`);
  }
  return validateSpec(data, where);
}

function yamlProblem(e: YAMLParseError): string {
  if (e.code === "MULTIPLE_DOCS") return "more than one document ('---'); write one VM per file";
  if (e.code === "DUPLICATE_KEY") return "a field is given twice";
  // The parser's message ends with its own position and an excerpt of the text, over lines.
  return e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

// One problem per field (the first: for 12.5 MiB, "not a whole number" says more than "too
// small"), in the order the spec's fields are checked; unknown fields together, with the field a
// typo was probably meant to be.
function problems(errors: ErrorObject[]): string[] {
  const byField = new Map<string, string>();
  // Unknown keys by the mapping they are in ("" is the spec itself), with the keys it allows.
  const unknown = new Map<string, { keys: string[]; allowed: string[] }>();
  for (const e of errors) {
    // A union's branches each fail; the union's own error says what all of them allow.
    if (e.schemaPath.includes("/anyOf/")) continue;
    const field = e.instancePath.replace(/^\//, "").replace(/\//g, ".");
    if (e.keyword === "additionalProperties") {
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const u = unknown.get(field) ?? { keys: [], allowed: field === "" ? FIELDS : allowed };
      u.keys.push((e.params as { additionalProperty: string }).additionalProperty);
      unknown.set(field, u);
      continue;
    }
    if (!byField.has(field)) byField.set(field, describe(e, field));
  }
  const out = [...byField.values()];
  for (const [field, u] of [...unknown].reverse()) {
    const named = u.keys.map((k) => {
      const near = u.allowed.find((f) => editDistance(f, k.toLowerCase()) <= (k.length <= 4 ? 1 : 2));
      return near ? `'${k}' (did you mean '${near}'?)` : `'${k}'`;
    });
    const list = named.some((n) => !n.includes("(")) ? `; the fields ${field === "" ? "are" : `of '${field}' are`} ${u.allowed.join(", ")}` : "";
    out.unshift(`unknown field${u.keys.length > 1 ? "s" : ""} ${named.join(", ")}${field === "" ? "" : ` in '${field}'`}${list}`);
  }
  return out;
}

interface Annotated {
  unit?: string;
  expected?: string;
  anyOf?: { const?: unknown }[];
}

function describe(e: ErrorObject, field: string): string {
  const at = `field '${field}'`;
  const s = (e.parentSchema ?? {}) as Annotated;
  const got = `, got ${show(e.data)}`;
  const unit = s.unit ? ` ${s.unit}` : "";
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "required":
      return `missing field '${p.missingProperty as string}'`;
    case "type":
      return `${at} must be ${TYPE_WORDS[p.type as string] ?? `of type ${String(p.type)}`}${got}`;
    case "minimum":
      return `${at} must be at least ${String(p.limit)}${unit}${got}`;
    case "maximum":
      return `${at} must be at most ${String(p.limit)}${unit}${got}`;
    case "minLength":
      return p.limit === 1 ? `${at} must not be empty` : `${at} must be at least ${String(p.limit)} characters${got}`;
    case "pattern":
      return `${at} must be ${s.expected ?? `of the form ${String(p.pattern)}`}${got}`;
    case "anyOf": {
      const allowed = (s.anyOf ?? []).map((b) => b.const).filter((c) => c !== undefined);
      return allowed.length > 0 ? `${at} must be one of ${allowed.join(", ")}${got}` : `${at} ${e.message ?? "is invalid"}${got}`;
    }
    default:
      return `${at} ${e.message ?? "is invalid"}${got}`;
  }
}

const TYPE_WORDS: Record<string, string> = {
  integer: "a whole number",
  number: "a number",
  string: "a string",
  boolean: "true or false",
  object: "a mapping of fields",
  array: "a list",
};

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null) return "nothing (null)";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return String(v);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = row;
  }
  return prev[b.length]!;
}
