#!/usr/bin/env bash
# ansible-test sanity on a copy of the tree laid out as ansible_collections/wirespeed/datapath.
# ansible-test bootstraps pip in its venvs with a script it downloads; where that host
# is out of reach, the interpreter's own ensurepip stands in for it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/wirespeed/datapath"
mkdir -p "$dest" ~/.ansible/test/cache
cd "$repo"
git ls-files -co --exclude-standard | grep -v '^build/' | tar -cf - -T - | tar -xf - -C "$dest"
bootstrap=~/.ansible/test/cache/get_pip_24_2.py
[ -e "$bootstrap" ] || cat > "$bootstrap" <<'PY'
import ensurepip, subprocess, sys
ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if not a.startswith("--")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q"] + args)
PY
cd "$dest" && git init -q && git add -A
"$repo/.venv/bin/ansible-test" sanity --python 3.11 --requirements "$@"
