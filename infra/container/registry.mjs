// A read-only OCI distribution endpoint on 127.0.0.1 for one image held as files, so that the .NET SDK's container
// targets (which pull their base image from a registry) can build on a machine that reaches no container registry.
// The SDK talks plain HTTP to registries on localhost.
// Usage: node registry.mjs <layout-dir> <name> <tag>   (layout-dir holds manifest.json and blobs/sha256/<hex>)
// Prints "listening <port>" and serves until its parent process ends (stdin closes) or it is killed.
import { createServer } from "node:http";
import { readFileSync, existsSync, statSync, createReadStream } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";

const [layout, name, tag] = process.argv.slice(2);
if (!layout || !name || !tag) {
  console.error("usage: node registry.mjs <layout-dir> <name> <tag>");
  process.exit(2);
}
const manifest = readFileSync(join(layout, "manifest.json"));
const manifestDigest = "sha256:" + createHash("sha256").update(manifest).digest("hex");
const manifestType = "application/vnd.oci.image.manifest.v1+json";

const server = createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  const head = req.method === "HEAD";
  if (req.method !== "GET" && !head) return send(405);
  if (url.pathname === "/v2/" || url.pathname === "/v2") return send(200, "application/json", Buffer.from("{}"));
  let m = url.pathname.match(/^\/v2\/(.+)\/manifests\/([^/]+)$/);
  if (m) {
    if (m[1] !== name || (m[2] !== tag && m[2] !== manifestDigest)) return send(404, "application/json", Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'));
    return send(200, manifestType, manifest, manifestDigest);
  }
  m = url.pathname.match(/^\/v2\/(.+)\/blobs\/sha256:([a-f0-9]{64})$/);
  if (m && m[1] === name) {
    const file = join(layout, "blobs", "sha256", m[2]);
    if (!existsSync(file)) return send(404);
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": statSync(file).size, "Docker-Content-Digest": "sha256:" + m[2] });
    if (head) return res.end();
    return createReadStream(file).pipe(res);
  }
  return send(404);

  function send(status, type, body, digest) {
    const headers = { "Docker-Distribution-API-Version": "registry/2.0" };
    if (type) headers["Content-Type"] = type;
    if (digest) headers["Docker-Content-Digest"] = digest;
    if (body) headers["Content-Length"] = body.length;
    res.writeHead(status, headers);
    res.end(head ? undefined : body);
  }
});
server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
// Stop with the script that started us.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
