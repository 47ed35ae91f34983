#!/usr/bin/env bash
# Builds the silo and REST gateway container images as OCI tarballs with the .NET SDK (dotnet publish
# -t:PublishContainer, ContainerArchiveOutputPath): no Docker daemon, and no container registry either.
#
# The SDK pulls its base image from a registry; this machine reaches only the Debian, NuGet and npm package
# registries. So the base image is assembled here: a root filesystem from Debian's packages (libc, libstdc++, OpenSSL,
# ICU, CA certificates, time zones, fetched with apt-get download) plus the .NET runtime of the installed SDK
# (Microsoft.NETCore.App and Microsoft.AspNetCore.App, the same files the official aspnet images carry), served to
# the SDK by registry.mjs on a loopback port. Where a registry is reachable, pass the official base instead:
#   dotnet publish silo -c Release -t:PublishContainer -p:ContainerArchiveOutputPath=artifacts/containers/keystone-silo.tar
# (the csproj keeps the SDK's default base, the aspnet image of the same .NET version).
#
# Output: artifacts/containers/keystone-silo.tar and keystone-gateway.tar, OCI image layouts in a tar (load with
# `podman load -i` or `docker load -i`, or push with `skopeo copy oci-archive:...`).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$root/artifacts/containers
work=$out/base
mkdir -p "$out"

dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
runtime=$(dotnet --list-runtimes | awk '$1 == "Microsoft.AspNetCore.App" && $2 ~ /^10\./ { v = $2 } END { print v }')
[ -n "$runtime" ] || { echo "container: no Microsoft.AspNetCore.App 10.x runtime beside the SDK" >&2; exit 1; }

if [ ! -f "$work/manifest.json" ] || [ "$(cat "$work/runtime" 2>/dev/null)" != "$runtime" ]; then
  rm -rf "$work" && mkdir -p "$work/debs" "$work/rootfs"
  # Debian's names differ between releases (libssl3 / libssl3t64, libicu72 / libicu76): take what this release has.
  pick() { for p in "$@"; do if apt-cache show "$p" >/dev/null 2>&1; then echo "$p"; return; fi; done; echo "container: none of $* in apt" >&2; exit 1; }
  if ! apt-cache show libc6 >/dev/null 2>&1; then apt-get update -qq; fi
  icu=$(apt-cache search --names-only '^libicu[0-9]+$' | awk '{ print $1 }' | sort -V | tail -1)
  packages=(libc6 libgcc-s1 libstdc++6 "$(pick libssl3t64 libssl3)" zlib1g "$icu" ca-certificates tzdata)
  echo "container: base packages ${packages[*]}"
  # Package lists can be stale (a version the mirror no longer serves): refresh them once and try again.
  if ! (cd "$work/debs" && apt-get download -qq "${packages[@]}" 2>/dev/null); then
    apt-get update -qq
    (cd "$work/debs" && apt-get download -qq "${packages[@]}")
  fi
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/rootfs"; done
  fs=$work/rootfs
  rm -rf "$fs"/usr/share/doc "$fs"/usr/share/man "$fs"/usr/share/lintian "$fs"/usr/share/locale
  # What ca-certificates' install script would generate.
  mkdir -p "$fs/etc/ssl/certs"
  cat "$fs"/usr/share/ca-certificates/mozilla/*.crt > "$fs/etc/ssl/certs/ca-certificates.crt"
  # The app user of the official .NET images (uid 1654), and no other account but root.
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\napp:x:1654:1654:app:/home/app:/usr/sbin/nologin\n' > "$fs/etc/passwd"
  printf 'root:x:0:\napp:x:1654:\n' > "$fs/etc/group"
  mkdir -p "$fs/tmp" "$fs/home/app" && chmod 1777 "$fs/tmp"
  # The .NET runtime: host, resolver and the two shared frameworks.
  mkdir -p "$fs/usr/share/dotnet/shared" "$fs/usr/share/dotnet/host/fxr" "$fs/usr/bin"
  cp "$dotnet_root/dotnet" "$dotnet_root/LICENSE.txt" "$dotnet_root/ThirdPartyNotices.txt" "$fs/usr/share/dotnet/"
  cp -r "$dotnet_root/host/fxr/$runtime" "$fs/usr/share/dotnet/host/fxr/"
  for fw in Microsoft.NETCore.App Microsoft.AspNetCore.App; do
    mkdir -p "$fs/usr/share/dotnet/shared/$fw" && cp -r "$dotnet_root/shared/$fw/$runtime" "$fs/usr/share/dotnet/shared/$fw/"
  done
  ln -sf /usr/share/dotnet/dotnet "$fs/usr/bin/dotnet"
  # One reproducible layer: fixed owner, order and times.
  tar -C "$fs" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/layer.tar" .
  diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  gzip -n -f "$work/layer.tar"
  node infra/container/oci-image.mjs "$work" "$work/layer.tar.gz" "$diff_id"
  rm -rf "$fs" "$work/debs"
  echo "$runtime" > "$work/runtime"
fi

# Serve the base image on a loopback port for the SDK, for as long as this script runs.
coproc REGISTRY { node infra/container/registry.mjs "$work" keystone-base "$runtime"; }
read -r _ port <&"${REGISTRY[0]}"
trap 'kill "$REGISTRY_PID" 2>/dev/null || true' EXIT
base="localhost:$port/keystone-base:$runtime"
echo "container: base image $base"

publish() {
  dotnet publish silo -c Release -t:PublishContainer --nologo -v:minimal \
    -p:ContainerBaseImage="$base" -p:ContainerArchiveOutputPath="$out/$1.tar" \
    -p:ContainerGenerateLabelsImageBaseName=false -p:ContainerGenerateLabelsImageBaseDigest=false "${@:2}"
}
publish keystone-silo
publish keystone-gateway -p:KeystoneContainerRole=Gateway
ls -l "$out"/*.tar
