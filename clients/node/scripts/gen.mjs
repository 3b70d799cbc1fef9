#!/usr/bin/env node
// Regenerates src/gen from the repository's .proto files with ts-proto, driven by the protoc that
// ships in Python's grpcio-tools (the npm `grpc-tools` package downloads a binary at install time,
// which this project cannot do). The generated code is not committed: this script is the source.
//
// Env: COPYLOOP_PYTHON — the Python with grpcio-tools and googleapis-common-protos
//      (default ../../.venv/bin/python, i.e. the repository's virtualenv).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const clientDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = resolve(clientDir, "..", "..");
const python = resolve(clientDir, process.env.COPYLOOP_PYTHON ?? "../../.venv/bin/python");
const protoRoot = join(repoRoot, "protos");
const outDir = join(clientDir, "src", "gen");
const plugin = join(clientDir, "node_modules", ".bin", "protoc-gen-ts_proto");

// Options: grpc-js service clients; int64 as JS number (ids and counts stay far below 2^53);
// Timestamps as Date; `fromPartial` so callers can pass partial requests.
const tsProtoOptions = [
  "outputServices=grpc-js",
  "outputServices=generic-definitions",
  "esModuleInterop=true",
  "env=node",
  "forceLong=number",
  "useDate=true",
  "useExactTypes=false",
  "outputJsonMethods=false",
];

function fail(message) {
  console.error(`gen: ${message}`);
  process.exit(1);
}

if (!existsSync(python)) fail(`no Python at ${python}; set COPYLOOP_PYTHON`);
if (!existsSync(plugin)) fail(`no ts-proto plugin at ${plugin}; run \`npm ci\` first`);

// Where google/rpc/*.proto (googleapis-common-protos) live: the directory holding `google/`.
// google.rpc is a namespace package, so its location comes from __path__, not __file__.
const googleapisInclude = execFileSync(
  python,
  ["-c", "import google.rpc, os; print(os.path.dirname(os.path.dirname(list(google.rpc.__path__)[0])))"],
  { encoding: "utf8" },
).trim();
if (!existsSync(join(googleapisInclude, "google", "rpc", "status.proto"))) {
  fail(`google/rpc/status.proto not under ${googleapisInclude}; install googleapis-common-protos`);
}

const contractDir = join(protoRoot, "copyloop", "v1");
const contracts = readdirSync(contractDir)
  .filter((name) => name.endsWith(".proto"))
  .sort()
  .map((name) => `copyloop/v1/${name}`);

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

// `python -m grpc_tools.protoc` appends its bundled well-known types (google/protobuf/*.proto)
// as the last include path, so timestamp.proto and duration.proto resolve without another -I.
execFileSync(
  python,
  [
    "-m", "grpc_tools.protoc",
    `-I${protoRoot}`,
    `-I${googleapisInclude}`,
    `--plugin=protoc-gen-ts_proto=${plugin}`,
    `--ts_proto_out=${outDir}`,
    `--ts_proto_opt=${tsProtoOptions.join(",")}`,
    ...contracts,
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
  ],
  { cwd: repoRoot, stdio: "inherit" },
);
console.log(`gen: ${contracts.length} contracts + google.rpc status/error_details -> ${outDir}`);
