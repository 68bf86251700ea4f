#!/usr/bin/env bash
# Install the Autobahn|Testsuite (PyPI autobahntestsuite 25.10.1) into a cached Python 2.7
# virtualenv and print the virtualenv's directory on stdout. Nothing else goes to stdout.
#
#   scripts/autobahn/install.sh            install if needed, print the directory
#
# wstest is Python 2 only (every release; 25.10.1's py3 wheel cannot import), so the suite
# needs a CPython 2.7. It is looked for, in order:
#   1. AUTOBAHN_PYTHON2=/path/to/python2.7 (if set, only this one is tried);
#   2. python2.7, then python2, on PATH;
#   3. pyenv's ${PYENV_ROOT:-~/.pyenv}/versions/2.7*/bin/python2.7 (newest first);
#   4. /usr/bin/python2.7, /usr/local/bin/python2.7.
# The virtualenv is made by virtualenv<20.22 run from python3 (20.22 dropped Python 2
# targets; Python 2 has no `venv`), then the pinned requirements.txt beside this script is
# installed into it (a C compiler is needed for wsaccel). Cold: about a minute (download,
# build, byte-compile); later runs reuse the virtualenv at once, until requirements.txt changes.
#
# Environment:
#   AUTOBAHN_VENV=dir    where the virtualenv lives
#                        (default ${XDG_CACHE_HOME:-~/.cache}/postern/autobahn-25.10.1-py27)
#   AUTOBAHN_PYTHON2=... the CPython 2.7 to use
#   AUTOBAHN_LOG=file    the install log (default: a file beside the virtualenv)
# Exits 1 with a message on stderr when no Python 2.7 can be had or the install fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${AUTOBAHN_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/postern/autobahn-25.10.1-py27}
log=${AUTOBAHN_LOG:-$venv.install.log}

say() { echo "autobahn: $*" >&2; }
# The marker holds requirements.txt's checksum: changing the pins rebuilds the virtualenv.
want=$(cksum <"$here/requirements.txt")
ready() {
  [ "$(cat "$venv/.postern-ready" 2>/dev/null)" = "$want" ] &&
    "$venv/bin/wstest" --help >/dev/null 2>&1
}

if ready; then
  echo "$venv"
  exit 0
fi

is_py27() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' >/dev/null 2>&1; }

find_python2() {
  if [ -n "${AUTOBAHN_PYTHON2:-}" ]; then
    if is_py27 "$AUTOBAHN_PYTHON2"; then command -v "$AUTOBAHN_PYTHON2"; return 0; fi
    say "AUTOBAHN_PYTHON2=$AUTOBAHN_PYTHON2 is not a working CPython 2.7"
    return 1
  fi
  local cand
  local pyenv_pythons=()
  # pyenv's 2.7.x, newest first.
  mapfile -t pyenv_pythons < <(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python2.7 2>/dev/null | sort -rV)
  for cand in python2.7 python2 "${pyenv_pythons[@]}" /usr/bin/python2.7 /usr/local/bin/python2.7; do
    if is_py27 "$cand"; then command -v "$cand"; return 0; fi
  done
  return 1
}

mkdir -p "$(dirname "$venv")"
# One installer at a time (two runs started together would otherwise write one virtualenv).
exec 9>"$venv.lock"
flock 9
if ready; then
  echo "$venv"
  exit 0
fi

if ! py2=$(find_python2); then
  [ -z "${AUTOBAHN_PYTHON2:-}" ] || exit 1
  say "no CPython 2.7 found; the Autobahn testsuite (wstest) runs only on Python 2.7."
  say "Tried: python2.7 and python2 on PATH, ${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7*/bin/python2.7,"
  say "/usr/bin/python2.7 and /usr/local/bin/python2.7. Install one (for example"
  say "'pyenv install 2.7.18') or point AUTOBAHN_PYTHON2 at one, then run this again."
  exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
  say "python3 is needed to make the Python 2.7 virtualenv (it runs virtualenv<20.22)"
  exit 1
fi

say "installing autobahntestsuite 25.10.1 into $venv (Python 2.7: $py2; log $log)"
start=$(date +%s)
boot=$(mktemp -d "${TMPDIR:-/tmp}/postern-virtualenv.XXXXXX")
trap 'rm -rf "$boot"' EXIT
rm -rf "$venv"
if ! {
  python3 -m pip install --disable-pip-version-check --target "$boot" 'virtualenv<20.22' &&
    PYTHONPATH=$boot python3 -m virtualenv --no-periodic-update -p "$py2" "$venv" &&
    "$venv/bin/python" -m pip install --disable-pip-version-check -r "$here/requirements.txt" &&
    "$venv/bin/wstest" --help
} >"$log" 2>&1; then
  say "install failed; the last lines of $log:"
  tail -n 20 "$log" >&2
  rm -rf "$venv"
  exit 1
fi
echo "$want" >"$venv/.postern-ready"
say "installed in $(( $(date +%s) - start )) s"
echo "$venv"
