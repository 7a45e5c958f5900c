#!/usr/bin/env bash
# System packages the project needs: redis-server (the coordination plane) and Mesa's EGL stack
# (LIBERO renders offscreen through llvmpipe with MUJOCO_GL=egl); g++ for the op DeepSpeed builds on
# first use (deepspeed_shm_comm). Installs only what is missing.
set -euo pipefail

packages=(redis-server libegl1 libegl-mesa0 libgl1-mesa-dri g++)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "install_system_deps: need root or sudo to install: ${missing[*]}" >&2; exit 1
fi
echo "install_system_deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
