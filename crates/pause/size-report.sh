#!/usr/bin/env bash
# Size report for pause: builds the static release binaries for both musl
# targets and prints, for each, the stripped file size, the peak resident set
# while waiting (VmHWM) and the SIGTERM-to-exit latency over many runs (median
# and p90). A small C pause built static with musl-gcc is measured the same way
# as the baseline the issue holds pause against.
#
#   crates/pause/size-report.sh [RUNS]      (RUNS defaults to 200)
#
# aarch64 runs under qemu-aarch64-static (Debian: qemu-user-static): its RSS is
# the emulator's and its latency includes emulation, so only its size compares.
# Latency is measured from bash's `kill` builtin to its `wait` builtin
# returning, so it includes bash noticing the exit; all rows pay the same.
set -euo pipefail
export LC_ALL=C

runs=${1:-200}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Number of rt_sigtimedwait on this host: a process blocked in it is waiting.
case $(uname -m) in
x86_64) sigwait_nr=128 ;;
aarch64) sigwait_nr=137 ;;
*) echo "size-report: unsupported host $(uname -m)" >&2 && exit 1 ;;
esac

fail() {
	echo "size-report: $*" >&2
	exit 1
}

# Builds pause for target $1 and prints the binary's path.
build_pause() {
	(cd "$here" && cargo build -q -p pause --release --target "$1") >&2 ||
		fail "cargo build -p pause --release --target $1 failed"

	local target_dir
	target_dir=$(cd "$here" && cargo metadata -q --format-version 1 --no-deps |
		sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
	echo "$target_dir/$1/release/pause"
}

# Builds the C baseline into $work/pause-c.
build_c_baseline() {
	cat >"$work/pause.c" <<'EOF'
/* Baseline: the same waiting loop and command line as pause, in C. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static const char version[] = "pause-c 0\n";
	static const char usage[] = "usage: pause-c [--version | -v]\n";
	sigset_t all;

	if (argc > 1) {
		if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-v")))
			return write(1, version, sizeof version - 1) < 0;
		write(2, usage, sizeof usage - 1);
		return 2;
	}
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, 0);
	for (;;) {
		int sig = sigwaitinfo(&all, 0);
		if (sig == SIGTERM || sig == SIGINT)
			_exit(0);
		if (sig == SIGCHLD)
			while (waitpid(-1, 0, WNOHANG) > 0)
				;
	}
}
EOF
	musl-gcc -static -Os -s -o "$work/pause-c" "$work/pause.c" ||
		fail "musl-gcc could not build the C baseline"
}

# Waits (polling /proc, no forks) until pid $1 sleeps in rt_sigtimedwait.
wait_ready() {
	local nr deadline=$((SECONDS + 10))
	while :; do
		read -r nr _ <"/proc/$1/syscall" 2>/dev/null || fail "pid $1 exited before waiting"
		[[ $nr == "$sigwait_nr" ]] && return
		((SECONDS < deadline)) || fail "pid $1 never waited for signals"
	done
}

# Prints the VmHWM (kB) of one waiting run of the command "$@".
peak_rss() {
	"$@" &
	local pid=$!
	wait_ready "$pid"

	local hwm
	hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
	kill -TERM "$pid"
	wait "$pid" || fail "$* exited with $? after SIGTERM"
	echo "$hwm"
}

# Prints "median p90" of SIGTERM-to-exit latency (µs) over $runs runs of "$@".
latency() {
	local samples=() pid t0 t1 status
	for ((i = 0; i < runs; i++)); do
		"$@" &
		pid=$!
		wait_ready "$pid"

		t0=$EPOCHREALTIME
		kill -TERM "$pid"
		status=0
		wait "$pid" || status=$?
		t1=$EPOCHREALTIME

		((status == 0)) || fail "$* exited with $status after SIGTERM (run $i)"
		samples+=($((10#${t1/./} - 10#${t0/./})))
	done

	local sorted
	mapfile -t sorted < <(printf '%s\n' "${samples[@]}" | sort -n)
	echo "${sorted[$(((runs - 1) / 2))]} ${sorted[$(((9 * runs + 9) / 10 - 1))]}"
}

# Prints one table row for the binary $2, run as "${@:3}" ($1 is the label).
row() {
	local label=$1 binary=$2
	shift 2
	local size rss lat
	size=$(stat -c %s "$binary")
	rss=$(peak_rss "$@")
	read -r median p90 < <(latency "$@")
	printf '%-30s %8s %10s %10s %10s\n' "$label" "$size" "$rss" "$median" "$p90"
}

# Prints a row with only the size, and why the rest was skipped.
size_only_row() {
	printf '%-30s %8s   skipped: %s\n' "$1" "$(stat -c %s "$2")" "$3"
}

x86=$(build_pause x86_64-unknown-linux-musl)
arm=$(build_pause aarch64-unknown-linux-musl)

echo "pause size report: $runs SIGTERM runs per row, $(uname -m) host, $(date -u +%FT%TZ)"
printf '%-30s %8s %10s %10s %10s\n' "binary" "bytes" "VmHWM kB" "median us" "p90 us"

row "pause x86_64-musl" "$x86" "$x86"

if command -v qemu-aarch64-static >/dev/null; then
	row "pause aarch64-musl (qemu)" "$arm" qemu-aarch64-static "$arm"
else
	size_only_row "pause aarch64-musl" "$arm" \
		"qemu-aarch64-static not installed (Debian package qemu-user-static)"
fi

if command -v musl-gcc >/dev/null; then
	build_c_baseline
	row "C pause x86_64 musl-gcc -Os" "$work/pause-c" "$work/pause-c"
else
	echo "C pause baseline               skipped: musl-gcc not installed (Debian package musl-tools)"
fi
echo "C pause aarch64                skipped: no aarch64 musl C compiler here (musl-tools is host-only)"
echo "note: aarch64 VmHWM is qemu-user's own and its latency includes emulation"
