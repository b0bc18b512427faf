#!/usr/bin/env bash
# The GPU check (bench/README.md, "GPU check"): every GPU figure of anomalyflow in one command.
#
#   bash bench/gpu_check.sh [--tiny] [--wheels DIR] [bench/gpu_check.py options] OUT_DIR
#
# Installs the wheels carried in .whl/ (`make gpu-wheels`; --wheels DIR for another folder) into a scratch
# folder with pip's --target (the GPU machine's own Python and torch stay as they are), puts this checkout's
# src/ and that folder on PYTHONPATH, then runs bench/gpu_check.py: the CUDA tests and every GPU benchmark,
# each record into OUT_DIR, the summary table last. Everything printed also goes to OUT_DIR/gpu_check.log.
# --tiny: the same steps at tiny sizes on the CPU, in seconds, with no wheels unless --wheels names some.
# PYTHON (default python3) is the interpreter.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
case ${1:-} in -h|--help|"") sed -n '2,12p' "$0"; [[ -n ${1:-} ]] && exec "$python" "$repo/bench/gpu_check.py" --help
  exit 2 ;; esac
out=${!#}  # the output folder comes last; every other argument but --wheels DIR goes to gpu_check.py
[[ $out != -* ]] || { echo "gpu_check.sh: the last argument must be the output folder, not '$out'" >&2; exit 2; }
tiny=0 wheels= pass=()
set -- "${@:1:$#-1}"
while (($#)); do
  case $1 in
    --wheels) wheels=${2:?--wheels needs a folder}; shift ;;
    --tiny) tiny=1; pass+=("$1") ;;
    *) pass+=("$1") ;;
  esac
  shift
done
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
exec > >(tee -a "$out/gpu_check.log") 2>&1

# A full run takes the carried wheels from .whl/ by default; a tiny run only those it is given.
((tiny)) || wheels=${wheels:-$repo/.whl}
site=${GPU_CHECK_SITE:-${TMPDIR:-/tmp}/anomalyflow-gpu-site}
pythonpath=$repo/src
if [[ -n $wheels ]]; then
  shopt -s nullglob
  found=("$wheels"/*.whl)
  if ((${#found[@]})); then
    echo "== installing ${#found[@]} wheels from $wheels into $site"
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
      "${found[@]}" || { echo "gpu_check.sh: the wheels did not install" >&2; exit 3; }
    pythonpath=$pythonpath:$site
  else
    echo "== no wheels in $wheels: using what $python has (make gpu-wheels fetches them)"
  fi
fi
export PYTHONPATH=$pythonpath${PYTHONPATH:+:$PYTHONPATH}
# Unbuffered, so that the log keeps every line of a run cut short; progress bars every 5 s, not 10 a second.
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=5
cd "$repo" || exit 2
commit=${ANOMALYFLOW_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo 'unknown: no .git; set ANOMALYFLOW_COMMIT')}
echo "== gpu_check $(date -Is) on ${HOSTNAME:-?}, commit $commit, $python"
"$python" bench/gpu_check.py --out "$out" "${pass[@]}"
rc=$?
echo "gpu_check.sh: exit code $rc after ${SECONDS} s"
exit $rc
