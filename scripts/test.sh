#!/usr/bin/env bash
# Installs what the tests need (Python packages, and Debian packages when missing), checks style
# and types, then runs every test. Real services (PostgreSQL, Chromium, ...) are started by the
# test fixtures on free loopback ports; under CI=true a missing service fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null || need+=(mosquitto-clients)  # messaging: docs/mqtt.md's commands
command -v runuser >/dev/null || need+=(util-linux)
command -v sftp >/dev/null || need+=(openssh-client)  # intake: the real OpenSSH sftp/ssh/scp clients
command -v gcc >/dev/null || need+=(gcc libc6-dev)  # intake: test FMUs are compiled C
command -v node >/dev/null || need+=(nodejs)  # intake: Azurite runs on Node
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Azurite (Azure Blob emulator, ~190 MB) from npm, kept outside the repository; the intake tests start it.
azurite_dir="${FASTLIMS_TEST_CACHE:-$HOME/.cache/fastlims-test}/azurite"
if [ ! -x "$azurite_dir/node_modules/.bin/azurite-blob" ]; then
  echo "installing Azurite into $azurite_dir"
  mkdir -p "$azurite_dir"
  npm install --prefix "$azurite_dir" --no-audit --no-fund --loglevel=error azurite >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "Running pip as the 'root' user" || true

echo "== ruff"
python3 -m ruff check src tests bench
python3 -m ruff format --check src tests bench
echo "== mypy (pure cores)"
python3 -m mypy
echo "== import-linter (architecture contracts in pyproject.toml, see docs/architecture.md)"
lint-imports --no-cache
echo "== pytest"
python3 -m pytest -q -p no:cacheprovider "$@"
