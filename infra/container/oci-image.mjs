// Writes an OCI image (one layer) as manifest.json + blobs/sha256/* from a gzipped layer tarball, with the image
// config the .NET SDK builds on: platform, PATH, the app user's uid (APP_UID), no entrypoint of its own.
// Usage: node oci-image.mjs <layout-dir> <layer.tar.gz> <layer-uncompressed-sha256-hex>
import { readFileSync, writeFileSync, mkdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";

const [layout, layerFile, diffId] = process.argv.slice(2);
const blobs = join(layout, "blobs", "sha256");
mkdirSync(blobs, { recursive: true });
const sha = (b) => createHash("sha256").update(b).digest("hex");

const layer = readFileSync(layerFile);
const layerDigest = sha(layer);
renameSync(layerFile, join(blobs, layerDigest));

const config = Buffer.from(JSON.stringify({
  architecture: "amd64",
  os: "linux",
  config: {
    Env: [
      "PATH=/usr/share/dotnet:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "DOTNET_ROOT=/usr/share/dotnet",
      "APP_UID=1654",
      "DOTNET_RUNNING_IN_CONTAINER=true",
    ],
    WorkingDir: "/",
  },
  rootfs: { type: "layers", diff_ids: [`sha256:${diffId}`] },
  history: [{ created_by: "infra/container/build-images.sh: Debian packages and the .NET runtime" }],
}));
const configDigest = sha(config);
writeFileSync(join(blobs, configDigest), config);

const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${configDigest}`, size: config.length },
  layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${layerDigest}`, size: statSync(join(blobs, layerDigest)).size }],
}));
writeFileSync(join(layout, "manifest.json"), manifest);
console.log(`base image: layer ${layerDigest.slice(0, 12)} (${(layer.length / 1048576).toFixed(1)} MiB), config ${configDigest.slice(0, 12)}`);
