// A VM's spec: what a user writes (YAML or JSON) to describe one VM, validated against one schema
// that also documents it (the daemon's API will serve the same schema). Errors name the field.
import { Type, type Static } from "typebox";
import { Ajv, type ErrorObject } from "ajv";
import { parse as parseYaml } from "yaml";
import { UserError } from "../errors.js";

export const VIRT_MODES = ["native", "trap-and-emulate"] as const;
export type VirtMode = (typeof VIRT_MODES)[number];
// vCPUs per VM this board offers.
export const MAX_CPUS = 8;
export const MIN_MEM_MIB = 16;
// Guest RAM lives in one 32-bit wasm memory (4 GiB) together with the hypervisor's own structures.
export const MAX_MEM_MIB = 3584;
export const DEFAULT_WEIGHT = 256;

export const VmSpecSchema = Type.Object(
  {
    name: Type.String({ pattern: "^[a-z0-9][a-z0-9_.-]{0,62}$", description: "unique within a host: lowercase letters, digits, '-', '_', '.'" }),
    memory: Type.Integer({ minimum: MIN_MEM_MIB, maximum: MAX_MEM_MIB, default: 512, description: "guest RAM in MiB" }),
    vcpus: Type.Integer({ minimum: 1, maximum: MAX_CPUS, default: 1 }),
    kernel: Type.Optional(Type.String({ minLength: 1, description: "a RISC-V Linux Image or ELF; default: the Debian guest" })),
    initrd: Type.Optional(Type.String({ minLength: 1 })),
    cmdline: Type.Optional(Type.String({ description: "kernel command line" })),
    virt: Type.Union(VIRT_MODES.map((m) => Type.Literal(m)), { default: "trap-and-emulate" }),
    weight: Type.Integer({ minimum: 1, maximum: 65535, default: DEFAULT_WEIGHT, description: "proportional share of CPU against other VMs" }),
    cap: Type.Integer({ minimum: 0, maximum: 100 * MAX_CPUS, default: 0, description: "most CPU the VM may use, in percent of one physical CPU; 0 = no cap" }),
    dedicated: Type.Boolean({ default: false, description: "each vCPU gets a physical CPU of its own" }),
  },
  { additionalProperties: false },
);

export type VmSpec = Static<typeof VmSpecSchema>;
export type VmSpecInput = Partial<VmSpec> & { name: string };

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const check = ajv.compile<VmSpec>(VmSpecSchema);

// Validates (and fills in defaults of) a spec given as data; `where` names its source in errors.
export function validateSpec(data: unknown, where = "spec"): VmSpec {
  const copy: unknown = data !== null && typeof data === "object" ? structuredClone(data) : data;
  if (check(copy)) return copy;
  const problems = (check.errors ?? []).map(describe);
  throw new UserError(`${where}: ${[...new Set(problems)].join("; ")}`);
}

export function parseSpec(text: string, where: string): VmSpec {
  let data: unknown;
  try {
    data = parseYaml(text); // YAML is a superset of JSON
  } catch (e) {
    throw new UserError(`${where} is not valid YAML or JSON: ${(e as Error).message.split("\n")[0]}`);
  }
  return validateSpec(data, where);
}

function describe(e: ErrorObject): string {
  const field = e.instancePath.replace(/^\//, "").replace(/\//g, ".");
  const at = field ? `field '${field}'` : "the spec";
  switch (e.keyword) {
    case "additionalProperties":
      return `unknown field '${[field, (e.params as { additionalProperty: string }).additionalProperty].filter(Boolean).join(".")}'`;
    case "required":
      return `missing field '${(e.params as { missingProperty: string }).missingProperty}'`;
    case "anyOf":
    case "const":
      return field === "virt" ? `field 'virt' must be one of ${VIRT_MODES.join(", ")}` : `${at} ${e.message}`;
    case "type":
      return `${at} must be ${(e.params as { type: string }).type === "object" && !field ? "a mapping of fields" : `of type ${(e.params as { type: string }).type}`}`;
    default:
      return `${at} ${e.message ?? "is invalid"}`;
  }
}
