// Validates Kubernetes manifests against the API schemas shipped in the kubernetes-models package, in two passes:
//  1. each object's own validator (kubernetes-models, generated from the Kubernetes OpenAPI document): types,
//     formats, required fields, enums;
//  2. unknown fields, which those validators let through (the API server would drop them silently, the way a
//     misspelt `readinessProbe` disappears): every object is written as a TypeScript object literal typed with the
//     package's interface for its kind, and the compiler's excess-property check names any field the schema does not
//     have, at any depth.
// Usage: node validate.mjs [file-or-directory ...]   (default: the manifests beside this folder)
// Exit code 0 when every document is valid, 1 otherwise (each problem printed as file#document: message).
import { readFileSync, readdirSync, statSync, mkdtempSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { join, dirname, resolve, basename } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const ts = require("typescript");

const inputs = process.argv.slice(2).length ? process.argv.slice(2) : [resolve(here, "..")];
const files = inputs.flatMap((p) =>
  statSync(p).isDirectory()
    ? readdirSync(p).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(p, f))
    : [p]);

const problems = [];
const typed = []; // { where, importPath, typeName, object }
let count = 0;

for (const file of files) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { prettyErrors: true });
  for (const [i, doc] of docs.entries()) {
    const where = `${basename(file)}#${i}`;
    if (doc.errors.length) {
      for (const e of doc.errors) problems.push(`${where}: YAML: ${e.message}`);
      continue;
    }
    const object = doc.toJS();
    if (object == null) continue;
    count++;
    if (object.kind === "Kustomization") {
      checkKustomization(file, where, object);
      continue;
    }
    const { apiVersion, kind } = object;
    if (typeof apiVersion !== "string" || typeof kind !== "string") {
      problems.push(`${where}: apiVersion and kind are required`);
      continue;
    }
    const modulePath = `kubernetes-models/${apiVersion}/${kind}`;
    let model;
    try {
      model = await import(modulePath);
    } catch {
      problems.push(`${where}: unknown kind ${kind} in ${apiVersion} (no schema ${modulePath})`);
      continue;
    }
    const Model = model[kind];
    try {
      new Model(object).validate();
    } catch (e) {
      problems.push(`${where} (${kind} ${object.metadata?.name ?? "?"}): ${e.message}`);
    }
    typed.push({ where, kind, name: object.metadata?.name ?? "?", modulePath, typeName: `I${kind}`, object });
  }
}

// Pass 2: unknown fields, through TypeScript's excess-property check.
if (typed.length) {
  // Inside this folder, so that the package's types resolve from node_modules.
  const dir = mkdtempSync(join(here, ".check-"));
  try {
    const lines = [];
    typed.forEach((t, i) => {
      lines.push(`import type { ${t.typeName} as T${i} } from ${JSON.stringify(t.modulePath)};`);
    });
    typed.forEach((t, i) => {
      lines.push(`export const d${i}: T${i} = ${JSON.stringify(t.object, null, 1)};`);
    });
    // Line numbers of each document's literal, to name the document an error is in.
    const text = lines.join("\n");
    const file = join(dir, "manifests.ts");
    writeFileSync(file, text);
    const program = ts.createProgram([file], {
      strict: true, noEmit: true, skipLibCheck: true, module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, types: [],
    });
    const source = program.getSourceFile(file);
    const docStartLines = typed.map((_, i) => source.getLineAndCharacterOfPosition(text.indexOf(`export const d${i}:`)).line);
    for (const d of ts.getPreEmitDiagnostics(program)) {
      const message = ts.flattenDiagnosticMessageText(d.messageText, "\n");
      if (!d.file || d.file.fileName !== source.fileName) {
        problems.push(`typescript: ${message}`);
        continue;
      }
      const line = d.file.getLineAndCharacterOfPosition(d.start).line;
      let k = 0;
      while (k + 1 < docStartLines.length && docStartLines[k + 1] <= line) k++;
      const t = typed[k];
      problems.push(`${t.where} (${t.kind} ${t.name}): ${message.split("\n")[0]}${pathHint(text, d.start)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function pathHint(text, position) {
  // The property named in an excess-property error sits at the error position: show its key.
  const m = /^\s*"([^"]+)"\s*:/.exec(text.slice(position, position + 200));
  return m ? ` (field "${m[1]}")` : "";
}

function checkKustomization(file, where, k) {
  const known = new Set(["apiVersion", "kind", "namespace", "resources", "images", "labels", "commonLabels", "commonAnnotations", "configMapGenerator", "secretGenerator", "patches", "namePrefix", "nameSuffix"]);
  for (const key of Object.keys(k)) if (!known.has(key)) problems.push(`${where}: unknown kustomization field "${key}"`);
  const dir = dirname(file);
  const listed = new Set(k.resources ?? []);
  for (const r of listed) if (!existsSync(join(dir, r))) problems.push(`${where}: resource ${r} does not exist`);
  for (const f of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== basename(file) && !f.includes(".example.")))
    if (!listed.has(f)) problems.push(`${where}: ${f} is not listed in resources (name it *.example.yaml if it is not meant to be applied)`);
}

for (const p of problems) console.log(p);
console.log(`${count} documents in ${files.length} files: ${problems.length ? `${problems.length} problems` : "valid"}`);
process.exit(problems.length ? 1 : 0);
