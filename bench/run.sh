#!/usr/bin/env bash
# Runs the performance benchmarks on one core and prints the figures: MB/s of audit JSON,
# events/s, allocations, efficiency E = T(floor)/T(pipeline) and the speedups of the
# pipeline over the typical Go implementation and over the Node.js blueprint logic.
#
# Then bench/cmd/metrics prints the arm64 bootstrap size and its parts, the start-to-ready
# time, the peak RSS of the bootstrap on a maximum-size delivery and the DynamoDB requests
# per batch; it runs the local services of infra/local.
#
# Then replay, the whole process, over a stream of 39 maximum-size deliveries (about 200 MB
# of audit JSON), against base64 + inflate of the same file (bench/cmd/payloads -inflate,
# with the decoder's inflater; with compress/gzip for reference):
# wall time, CPU time and peak RSS of each, replay with one worker per core and with one.
#
# Environment: COUNT (rounds of all the benchmarks, default 5; the median is reported),
# STARTS (bootstrap starts timed, default 21), METRICS=0 (skip bench/cmd/metrics),
# REPLAY=0 (skip the replay comparison).
set -euo pipefail
cd "$(dirname "$0")/.."

count=${COUNT:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go run ./bench/cmd/payloads -dir "$tmp"
# The benchmarks run in turn, count rounds of all of them, rather than count times each in
# a row: a burst of load on this shared machine then slows one round of every benchmark
# instead of all the runs of one, and the medians compare the same moments.
CGO_ENABLED=0 go test -c -o "$tmp/bench.test" ./bench
for ((i = 0; i < count; i++)); do
	(cd bench && GOMAXPROCS=1 "$tmp/bench.test" -test.run '^$' -test.bench . -test.benchmem -test.count 1)
done | tee "$tmp/go.txt" >&2

node_ns=""
if command -v node >/dev/null; then
	node_out=$(node bench/node/blueprint.js "$tmp" "$count")
	echo "$node_out" >&2
	node_ns=$(sed -E 's/.*"nsPerPass":([0-9.e+]+).*/\1/' <<<"$node_out")
fi

echo
echo "machine: $(nproc) cores, $(lscpu | sed -nE 's/^Model name: *//p' | head -1), $(go version | cut -d' ' -f3), GOMAXPROCS=1, CGO_ENABLED=0"
awk -v node_ns="$node_ns" '
function median(name,   n, i, j, t, a) {
	n = split(runs[name], a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return a[int((n + 1) / 2)]
}
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
	for (i = 2; i < NF; i++) {
		if ($(i+1) == "ns/op") ns = $i
		if ($(i+1) == "MB/s") mbs[name] = $i
		if ($(i+1) == "events/s") evs[name] = $i
		if ($(i+1) == "allocs/op") allocs[name] = $i
	}
	runs[name] = runs[name] " " ns
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
}
END {
	printf "%-22s %12s %10s %12s %10s\n", "benchmark (median)", "ms/pass", "MB/s", "events/s", "allocs"
	for (k = 1; k <= n; k++) {
		name = order[k]; t[name] = median(name)
		printf "%-22s %12.2f %10.1f %12.0f %10s\n", name, t[name] / 1e6, mbs[name], evs[name], allocs[name]
	}
	if (node_ns != "") printf "%-22s %12.2f\n", "Node.js blueprint (d)", node_ns / 1e6
	printf "\nE = T(a floor)/T(b pipeline)      = %.2f   (target >= 0.85)\n", t["Floor"] / t["Pipeline"]
	if ("FloorStdlib" in t) printf "T(floor with compress/gzip)/T(b)  = %.2f   (the floor of the inflater before internal/inflate)\n", t["FloorStdlib"] / t["Pipeline"]
	printf "speedup (b) over (c) Go baseline  = %.1fx  (target >= 10x)\n", t["Baseline"] / t["Pipeline"]
	if (node_ns != "") printf "speedup (b) over (d) Node.js      = %.1fx  (target >= 3x)\n", node_ns / t["Pipeline"]
}' "$tmp/go.txt"

if [[ "${REPLAY:-1}" != 0 ]]; then
	echo
	go build -o "$tmp/payloads" ./bench/cmd/payloads
	go build -o "$tmp/replay" ./cmd/replay
	"$tmp/payloads" -jsonl "$tmp/stream.jsonl" -n 39
	# wall seconds, user CPU seconds and peak RSS (KiB) of one run, its output discarded
	timed() { /usr/bin/time -f "%e %U %M" "$@" 2>&1 >/dev/null | tail -1; }
	for ((i = 0; i < count; i++)); do
		echo "inflate $(timed "$tmp/payloads" -inflate "$tmp/stream.jsonl")"
		echo "inflatestd $(timed "$tmp/payloads" -inflate "$tmp/stream.jsonl" -stdlib)"
		echo "replay $(timed "$tmp/replay" --format splunk "$tmp/stream.jsonl")"
		echo "replay1 $(timed "$tmp/replay" --workers 1 --format splunk "$tmp/stream.jsonl")"
	done >"$tmp/replay.txt"
	awk -v size="$(stat -c %s "$tmp/stream.jsonl")" -v cores="$(nproc)" '
	function median(s,   n, i, j, t, a) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return a[int((n + 1) / 2)]
	}
	{ wall[$1] = wall[$1] " " $2; user[$1] = user[$1] " " $3; if ($4 > rss[$1]) rss[$1] = $4 }
	END {
		printf "replay --format splunk over 39 deliveries (%.1f MB file, about 200 MB of audit JSON), median of %d runs:\n", size / 1e6, split(wall["replay"], x, " ")
		printf "  %-34s %6s %9s %13s\n", "", "wall s", "user CPU s", "peak RSS MiB"
		printf "  %-34s %6.2f %9.2f %13.1f\n", "base64 + inflate only", median(wall["inflate"]), median(user["inflate"]), rss["inflate"] / 1024
		printf "  %-34s %6.2f %9.2f %13.1f\n", "  the same with compress/gzip", median(wall["inflatestd"]), median(user["inflatestd"]), rss["inflatestd"] / 1024
		printf "  %-34s %6.2f %9.2f %13.1f\n", "replay (" cores " workers)", median(wall["replay"]), median(user["replay"]), rss["replay"] / 1024
		printf "  %-34s %6.2f %9.2f %13.1f\n", "replay --workers 1", median(wall["replay1"]), median(user["replay1"]), rss["replay1"] / 1024
		printf "  replay / inflate, wall time = %.2f   (target <= 1.20)\n", median(wall["replay"]) / median(wall["inflate"])
		printf "  replay --workers 1 / inflate     = %.2f wall, %.2f CPU\n", median(wall["replay1"]) / median(wall["inflate"]), median(user["replay1"]) / median(user["inflate"])
	}' "$tmp/replay.txt"
fi

echo
if [[ "${METRICS:-1}" != 0 ]]; then
	# Bootstrap size and its parts, start to ready, peak RSS under the Lambda runtime
	# interface emulator, DynamoDB requests per batch (needs infra/local/install.sh).
	go run ./bench/cmd/metrics -starts "${STARTS:-21}"
fi
