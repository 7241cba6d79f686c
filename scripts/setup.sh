#!/usr/bin/env bash
# Sets up everything Signet needs on a Debian machine, installing only what is missing, then
# (unless --no-demo) runs the demo pipeline on the embedded defaults. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) demo=0 ;;
    -h|--help) echo "usage: scripts/setup.sh [--no-demo]"; exit 0 ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Debian packages used by signing, installers and their tests.
APT_PACKAGES=(git ca-certificates openssl osslsigncode nsis wixl msitools softhsm2 libengine-pkcs11-openssl opensc
  gcc-mingw-w64-x86-64 p7zip-full wine wine64 gcab postgresql redis-server curl)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
else
  say "Debian packages: all present"
fi

node_ok() { node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=18)?0:1)' 2>/dev/null; }
if ! node_ok; then
  say "Node $(node --version 2>/dev/null || echo none) is older than 22.18: installing Node 24 from the npm registry"
  $SUDO npm i -g --force --loglevel=error node@24 >/dev/null
  hash -r
  node_ok || { echo "setup: Node 24 install failed" >&2; exit 4; }
fi
say "node $(node --version), npm $(npm --version 2>/dev/null)"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  # `npm install`, not `npm ci`: the registry mirror lacks some optional platform packages (biome's
  # Windows/macOS/musl binaries), which `npm ci` treats as a lock-file mismatch. The lock still pins
  # every version that is installed.
  npm install --no-audit --no-fund --loglevel=error
else
  say "npm dependencies: up to date"
fi

if [ "$demo" = 1 ]; then
  say "running the demo pipeline (signet demo)"
  exec node tools/cli/bin.ts demo
fi
