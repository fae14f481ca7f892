# Sourced by the tests of `mecbed run --prompt-tokens` (cli_run_generate,
# cli_run_gen_policies, cli_run_gen_spec): a bad command line must fail with
# a message. Not a test itself (tests/run.sh runs tests/cli_*.sh only).
#
#   . "$(dirname "$0")/lib_run_fails.sh"
#   fails "expected message" ARGS...   mecbed run ARGS must exit non-zero and say it
fails() {
    want=$1; shift
    out=$($B run "$@" 2>&1) && { echo "mecbed run $* succeeded"; exit 1; }
    echo "$out" | grep -q -- "$want" || { echo "mecbed run $*: expected '$want', got: $out"; exit 1; }
}
