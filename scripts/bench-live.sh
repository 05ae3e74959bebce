#!/usr/bin/env bash
# floodguard side by side with FastNetMon Community (Debian's fastnetmon
# 1.2.4), one after the other on the same namespace lab and the same hping3
# flood: time from flood start to detection, time to traffic being dropped,
# CPU while idle and under the flood, and whether benign traffic was hit.
# Root only; everything happens in two namespaces this script creates
# (198.18.0.0/24) and is removed on exit, Ctrl-C included.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-live.sh: needs root (namespaces, XDP)" >&2; exit 1; }
for tool in fastnetmon hping3 ip; do
	command -v "$tool" >/dev/null || { echo "bench-live.sh: needs $tool (make deps)" >&2; exit 1; }
done
FG=${FG:-bin/floodguard}
[ -x "$FG" ] || go build -o "$FG" ./cmd/floodguard
FG=$(realpath "$FG")
WARM=${WARM:-12}    # seconds to learn a baseline before measuring
IDLE=${IDLE:-10}    # seconds of idle CPU measurement
FLOOD=${FLOOD:-10}  # seconds of flood
OUTFILE=${OUTFILE:-out/bench-live.md}
ATT=fgbl-att-$$ VIC=fgbl-vic-$$
W=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	sleep 0.5
	for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
	ip netns del "$ATT" 2>/dev/null || true
	ip netns del "$VIC" 2>/dev/null || true
	umount "$W/bpf" 2>/dev/null || true
	[ -n "${KEEP:-}" ] && echo "kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ATT"; ip netns add "$VIC"
ip link add va netns "$ATT" type veth peer name vb netns "$VIC"
ip -n "$ATT" addr add 198.18.0.2/24 dev va   # attacker
ip -n "$ATT" addr add 198.18.0.3/24 dev va   # benign client
ip -n "$VIC" addr add 198.18.0.1/24 dev vb   # the origin server
for ns in "$ATT" "$VIC"; do ip -n "$ns" link set lo up; done
ip -n "$ATT" link set va up; ip -n "$VIC" link set vb up
mkdir -p "$W/bpf" && mount -t bpf bpf "$W/bpf"

CLK=$(getconf CLK_TCK)
now() { date +%s.%N; }
# cpu_s PID: user+system CPU seconds of a process and its threads.
cpu_s() { awk -v c="$CLK" '{print ($14+$15)/c}' "/proc/$1/stat"; }
pct() { awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN{printf "%.1f%%", 100*(b-a)/s}'; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b == "") print "n/a"; else printf "%.0f ms", 1000*(b-a)}'; }

# wait_for FILE REGEX TIMEOUT: echo the time a matching line appeared.
wait_for() {
	local deadline=$(( $(date +%s) + $3 ))
	while [ "$(date +%s)" -le "$deadline" ]; do
		if grep -qE "$2" "$1" 2>/dev/null; then now; return; fi
		sleep 0.05
	done
}

benign() { # 100 probes at 10/s from the benign client, prints the answered share
	ip netns exec "$ATT" hping3 -n --icmp -c 100 -i u100000 -a 198.18.0.3 198.18.0.1 2>&1 |
		awk '/packets transmitted/ {printf "%d/%d", $4, $1}'
}

flood() { # the same flood for both: UDP from 198.18.0.2, hping3 --flood (as fast as it goes)
	timeout "$FLOOD" ip netns exec "$ATT" hping3 -q -n --flood --udp -p 9 -a 198.18.0.2 198.18.0.1 >/dev/null 2>&1 || true
}

run_one() { # NAME PID LOG DETECT_RE DROP_CHECK
	local name=$1 pid=$2 log=$3 detect_re=$4 drop_check=$5
	sleep "$WARM"
	local c0 c1 c2 c3 t0 tdet tdrop b
	c0=$(cpu_s "$pid"); sleep "$IDLE"; c1=$(cpu_s "$pid")
	benign > "$W/$name.benign" &
	local bp=$!
	t0=$(now); c2=$(cpu_s "$pid")
	flood &
	local fp=$!
	tdet=$(wait_for "$log" "$detect_re" "$FLOOD")
	tdrop=$($drop_check "$FLOOD")
	wait "$fp"; c3=$(cpu_s "$pid")
	wait "$bp"; b=$(cat "$W/$name.benign")
	printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$(ms "$t0" "$tdet")" "$(ms "$t0" "$tdrop")" \
		"$(pct "$c0" "$c1" "$IDLE")" "$(pct "$c2" "$c3" "$FLOOD")" "$b $(benign_hit "$name")" >> "$W/table"
}

# --- floodguard -----------------------------------------------------------
cat > "$W/fg.yaml" <<YAML
warm_up: 5s
daemon:
  pin_dir: $W/bpf/floodguard
  state_dir: $W/fg-state
  runtime_dir: $W/fg-run
YAML
ip netns exec "$VIC" "$FG" run --interface vb --config "$W/fg.yaml" --log-format json > "$W/fg.log" 2>&1 &
PIDS+=($!)
fg_pid() { pgrep -f "$FG run --interface vb --config $W/fg.yaml" | head -1; }
sleep 1
fg_dropping() { # first time the kernel reports dropped packets for a rule
	local deadline=$(( $(date +%s) + $1 ))
	while [ "$(date +%s)" -le "$deadline" ]; do
		if "$FG" bans -o json --config "$W/fg.yaml" 2>/dev/null | grep -qE '"dropped_packets": [1-9]'; then now; return; fi
		sleep 0.05
	done
}
benign_hit() {
	case $1 in
	floodguard) grep -q '"target":"198.18.0.3/32"' "$W/fg.log" && echo "(benign source banned!)" || echo "(never banned)";;
	fastnetmon) grep -q '198.18.0.1 .*ban' "$W/fnm.notify" 2>/dev/null && echo "(victim 198.18.0.1 marked for blackholing: all its users)" || echo "(no action on the victim)";;
	esac
}
run_one floodguard "$(fg_pid)" "$W/fg.log" '"event":"ban"' fg_dropping
kill "${PIDS[-1]}" 2>/dev/null || true
wait "${PIDS[-1]}" 2>/dev/null || true
# Leave the interface as FastNetMon would find it: no XDP program.
ip -n "$VIC" link set vb xdpgeneric off 2>/dev/null || true
ip -n "$VIC" link set vb xdp off 2>/dev/null || true

# --- FastNetMon -------------------------------------------------------------
# Its defaults, but for what this lab needs: the protected network, AF_PACKET
# capture on the victim's interface, the per-host pps threshold set to
# floodguard's per-source floor (1000 pps), a notify script recording its
# ban calls, and no usage reports.
echo "198.18.0.0/24" > "$W/networks_list"
: > "$W/networks_whitelist"
cat > "$W/notify.sh" <<SH
#!/bin/sh
echo "\$(date +%s.%N) \$*" >> "$W/fnm.notify"
cat > /dev/null
SH
chmod +x "$W/notify.sh"
cat > "$W/fastnetmon.conf" <<CONF
logging_level = info
disable_usage_report = on
enable_ban = on
enable_ban_ipv6 = on
process_incoming_traffic = on
process_outgoing_traffic = off
ban_time = 60
unban_only_if_attack_finished = on
networks_list_path = $W/networks_list
white_list_path = $W/networks_whitelist
check_period = 1
enable_connection_tracking = off
ban_for_pps = on
ban_for_bandwidth = off
ban_for_flows = off
threshold_pps = 1000
mirror_afpacket = on
interfaces = vb
average_calculation_time = 5
speed_calculation_delay = 1
notify_script_path = $W/notify.sh
pcap = off
netflow = off
sflow = off
exabgp = off
gobgp = off
redis_enabled = off
mongodb_enabled = off
CONF
mkdir -p /var/log/fastnetmon_attacks # FastNetMon logs an error without it
ip netns exec "$VIC" fastnetmon --configuration_file "$W/fastnetmon.conf" --log_file "$W/fnm.log" --disable_pid_logic > "$W/fnm.out" 2>&1 &
PIDS+=($!)
sleep 1
fnm_pid=$(pgrep -f "fastnetmon --configuration_file $W/fastnetmon.conf" | head -1)
touch "$W/fnm.notify"
fnm_dropping() { :; } # FastNetMon drops nothing itself; see the table notes
run_one fastnetmon "$fnm_pid" "$W/fnm.notify" ' ban' fnm_dropping

mkdir -p "$(dirname "$OUTFILE")"
{
	echo "floodguard vs FastNetMon $(dpkg-query -W -f='${Version}' fastnetmon 2>/dev/null), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, kernel $(uname -r)"
	echo "hping3 UDP flood from 198.18.0.2 for ${FLOOD}s after ${WARM}s of learning; benign: 100 ICMP probes from 198.18.0.3 during the flood"
	echo
	echo "| tool | flood start to detection | to traffic dropped | CPU idle | CPU under flood | benign probes answered |"
	echo "|---|---|---|---|---|---|"
	cat "$W/table"
} | tee "$OUTFILE"
