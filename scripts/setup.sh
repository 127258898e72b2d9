#!/usr/bin/env bash
# Sets up everything dit-kit needs on a fresh Debian machine (README, step 1):
# Debian packages (Jupyter and friends) when missing, npm packages, the tslab
# kernel registered against that Jupyter, and the compiled kit.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages the kit uses. Only missing ones are installed.
DEBS=(
  jupyter-notebook jupyter-nbconvert jupyter-client python3-ipykernel   # notebooks; jupyter-client has `jupyter kernelspec`, which tslab needs
  libopenblas-dev                                        # sgemm for the native CPU backend (native/)
  chromium                                               # headless PNG export of the figures (dit figures)
)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "[setup] Debian packages present"
fi

echo "[setup] npm packages"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi

echo "[setup] tslab kernel"
# tslab is a local dependency, not on PATH: register the kernel with this checkout's binary.
npx --no-install tslab install --python /usr/bin/python3 --binary "$PWD/node_modules/.bin/tslab" >/dev/null
jupyter kernelspec list | grep -E '^\s*(tslab|jslab)' || { echo "[setup] tslab kernel did not register" >&2; exit 1; }

echo "[setup] native CPU backend (native/build.sh)"
if ! bash native/build.sh; then
  echo "[setup] WARNING: the native CPU backend did not build (see above); the kit will run on the" \
       "slower wasm backend. Fix the cause and run: npm run build:native" >&2
fi

echo "[setup] building the kit"
npm run build --silent

echo "[setup] done. Run the tests with: npm test"
