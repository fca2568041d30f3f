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
# Every Python tests/config.yml declares for modules (3.9 and later) that is installed here; the controller's
# own (the venv's) first, since the controller-side tests run only on it.
venv_python=$("$repo/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$repo/.venv/bin/ansible-test" sanity --python "$venv_python" --requirements "$@"
for version in 3.9 3.10 3.11 3.12 3.13 3.14; do
	if [ "$version" = "$venv_python" ] || ! command -v "python$version" >/dev/null; then
		continue
	fi
	echo "ansible-test sanity on Python $version (modules)"
	"$repo/.venv/bin/ansible-test" sanity --python "$version" --requirements "$@"
done
