#!/usr/bin/env bash
# Install what the tests need (first run only), then lint, check import contracts and types,
# and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" test
cd "$SA3_ROOT"
B="$SA3_VENV/bin"
export QT_QPA_PLATFORM=offscreen
step() { printf '\n== %s\n' "$*" >&2; }
step "ruff check";          "$B/ruff" check .
step "ruff format --check"; "$B/ruff" format --check .
step "import contracts";    "$B/lint-imports"
step "mypy";                "$B/mypy"
step "pytest"
# pytest exits 5 when it collected no test: that is a failure here, like any other non-zero.
"$B/python" -m pytest "$@"
