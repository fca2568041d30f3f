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
# Every sanity test on the venv's Python (the controller's). Then, for a whole run (no --test given), the tests
# that depend on the modules' Python on every other Python that tests/config.yml declares for modules (3.9 and
# later) and that is installed here: on PATH, or built by pyenv (whose shims answer only for the selected
# versions, so its versions folder is searched too). SANITY_PYTHONS="3.9 3.12" runs only those.
# compile runs on each; import too on 3.9 and 3.10. On 3.12 and later ansible-test runs itself under that Python
# with a cleaned environment, and the fresh venv of its import test cannot bootstrap pip through this network's
# TLS proxy, so import there is left out (the modules import on 3.11 above, and on 3.9 and 3.10).
venv_python=$("$repo/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ -n "${SANITY_PYTHONS:-}" ] || "$repo/.venv/bin/ansible-test" sanity --python "$venv_python" --requirements "$@"
find_python() {
	if "python$1" -c pass 2>/dev/null; then
		command -v "python$1"
		return
	fi
	local root candidate
	root=$(pyenv root 2>/dev/null) || return 1
	for candidate in "$root"/versions/"$1".*/bin/"python$1"; do
		if [ -x "$candidate" ]; then
			echo "$candidate"
			return
		fi
	done
	return 1
}
if [ $# -eq 0 ]; then
	for version in ${SANITY_PYTHONS:-3.9 3.10 3.11 3.12 3.13 3.14}; do
		[ "$version" = "$venv_python" ] && continue
		interpreter=$(find_python "$version") || continue
		tests=(--test compile)
		case "$version" in 3.9 | 3.10) tests+=(--test import) ;; esac
		echo "ansible-test sanity ${tests[*]} on Python $version ($interpreter)"
		PATH="$(dirname "$interpreter"):$PATH" "$repo/.venv/bin/ansible-test" sanity --python "$version" \
			--requirements "${tests[@]}"
	done
fi
