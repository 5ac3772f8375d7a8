#!/usr/bin/env bash
# Two "nodes" on one machine: two network namespaces joined by a veth pair, each rank's processes in a UTS
# namespace of its node's hostname (node1, node2). mpirun runs in node1; Open MPI's rsh agent is replaced by a
# script that enters the other namespace (what ssh does on a cluster), and all traffic is TCP between the
# namespaces. Checks, as on a real cluster:
#  - 2 nodes x 2 ranks: each rank's host and local rank, one thread each (2 cores per node / 2 ranks); the
#    losses equal a one-node 4-rank run's bit for bit (the gradient sync is the same over TCP);
#  - 2 + 1 ranks: the lone rank on node2 gets both of its node's cores (the per-node thread split);
#  - node2's rank 3 killed before step 6: the job ends (no hang), and `facetrain doctor` names rank 3.
# Exits 77 with one line where namespaces cannot be made (not root, no iproute2, a locked-down container); under
# CI=true, which provides them, that is a failure (tests/lib/skip.sh).
# Usage: two_nodes.sh FACETRAIN_BINARY
set -uo pipefail
ft=$1
source "$(dirname "$0")/../lib/skip.sh"
[[ $(id -u) == 0 ]] || skip_unless_ci "network namespaces need root"
command -v ip > /dev/null && command -v unshare > /dev/null || skip_unless_ci "needs ip (iproute2) and unshare"
work=$(mktemp -d)
tag=$$
ns1=ftn1-$tag ns2=ftn2-$tag v1=ftva$tag v2=ftvb$tag
net=10.231.$((tag % 200 + 10))
cleanup() {
  pkill -f "$work" 2>/dev/null
  ip netns del "$ns1" 2>/dev/null; ip netns del "$ns2" 2>/dev/null; ip link del "$v1" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
{ ip netns add "$ns1" && ip netns add "$ns2" && ip link add "$v1" type veth peer name "$v2" &&
  ip link set "$v1" netns "$ns1" && ip link set "$v2" netns "$ns2" &&
  ip netns exec "$ns1" ip addr add "$net.1/24" dev "$v1" && ip netns exec "$ns1" ip link set "$v1" up &&
  ip netns exec "$ns1" ip link set lo up && ip netns exec "$ns2" ip addr add "$net.2/24" dev "$v2" &&
  ip netns exec "$ns2" ip link set "$v2" up && ip netns exec "$ns2" ip link set lo up; } 2> "$work/ns.log" ||
  skip_unless_ci "cannot make network namespaces here: $(head -1 "$work/ns.log")"
cat > "$work/agent.sh" <<AGENT
#!/usr/bin/env bash
# Open MPI's rsh agent: AGENT HOST COMMAND... runs COMMAND in HOST's namespaces, as ssh would on HOST.
host=\$1; shift
case \$host in
  $net.1) ns=$ns1; name=node1 ;;
  $net.2) ns=$ns2; name=node2 ;;
  *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" unshare --uts bash -c "hostname \$name; exec \$*"
AGENT
chmod +x "$work/agent.sh"
# on_nodes "HOSTS" NP ARGS...: mpirun from node1 over both nodes, TCP only between them.
on_nodes() {
  local hosts=$1 np=$2; shift 2
  timeout 180 ip netns exec "$ns1" unshare --uts bash -c 'hostname node1; exec "$@"' _ \
    mpirun --allow-run-as-root --oversubscribe --bind-to none --mca plm_rsh_agent "$work/agent.sh" \
    --host "$hosts" -np "$np" --mca btl self,vader,tcp --mca btl_tcp_if_include "$net.0/24" \
    --mca oob_tcp_if_include "$net.0/24" -x FACETRAIN_FAULT_KILL_RANK -x FACETRAIN_FAULT_KILL_STEP "$@"
}
fail() { echo "FAIL: $*"; exit 1; }
"$ft" synth --output "$work/s.h5" --count 400 --size 16 --seed 3 --quiet || fail "synth"
cat > "$work/a.pbtxt" <<CFG
model { vit { patch_size: 4 width: 16 depth: 1 heads: 2 mlp_ratio: 2 } }
data { store: "$work/s.h5" batch_size: 8 val_split: "" }
schedule { max_steps: 12 }
distributed { collective_timeout_s: 20 }
logging { run_dir: "$work/unused" every_steps: 1 }
CFG
export FACETRAIN_FAULT_KILL_RANK="" FACETRAIN_FAULT_KILL_STEP=""
if ! on_nodes "$net.1:2,$net.2:2" 4 hostname > "$work/probe.log" 2>&1; then
  skip_unless_ci "mpirun cannot start ranks across the namespaces here: $(grep -v '^$' "$work/probe.log" | head -1)"
fi
losses() { grep '"train/loss"' "$1" | sed -E 's/.*"step": *([0-9]+).*"train\/loss": *([-0-9.eE+]+).*/\1 \2/'; }

# 1. 2 nodes x 2 ranks against one node x 4 ranks.
on_nodes "$net.1:2,$net.2:2" 4 "$ft" train --config "$work/a.pbtxt" --quiet --set logging.run_dir="$work/two" \
  > "$work/two.log" 2>&1 || { cat "$work/two.log"; fail "the 2-node run failed"; }
for r in 0 1 2 3; do
  node=$((r / 2 + 1)) local=$((r % 2))
  grep -q "^\[rank $r\] host node$node, rank $r/4, local rank $local/2, device cpu, threads 1, cores [0-9][0-9,-]*$" "$work/two.log" ||
    { grep "host" "$work/two.log"; fail "rank $r is not on node$node as local rank $local of 2 with 1 thread"; }
done
mpirun --allow-run-as-root --oversubscribe --bind-to none -np 4 "$ft" train --config "$work/a.pbtxt" --quiet \
  --threads 1 --set logging.run_dir="$work/one" > "$work/one.log" 2>&1 || { cat "$work/one.log"; fail "the 1-node run failed"; }
[[ $(losses "$work/two/metrics.jsonl" | wc -l) == 12 ]] && diff <(losses "$work/two/metrics.jsonl") <(losses "$work/one/metrics.jsonl") > /dev/null ||
  fail "the 2-node losses differ from the 1-node 4-rank run's"
echo "ok   2 nodes x 2 ranks over TCP: hosts node1/node2, local ranks 0-1 on each, 1 thread each; 12 losses identical to one node's"

# 2. 2 + 1 ranks: the lone rank on node2 takes both cores of its node.
on_nodes "$net.1:2,$net.2:1" 3 "$ft" train --config "$work/a.pbtxt" --quiet --set logging.run_dir="$work/split" \
  > "$work/split.log" 2>&1 || { cat "$work/split.log"; fail "the 2+1 run failed"; }
cores=$(nproc)
grep -q "^\[rank 2\] host node2, rank 2/3, local rank 0/1, device cpu, threads $cores, cores [0-9][0-9,-]*$" "$work/split.log" &&
  grep -q "^\[rank 0\] host node1, rank 0/3, local rank 0/2, device cpu, threads $((cores / 2 > 0 ? cores / 2 : 1)), cores [0-9][0-9,-]*$" "$work/split.log" ||
  { grep "host" "$work/split.log"; fail "the per-node thread split is not cores / ranks on each node"; }
echo "ok   2 + 1 ranks: node1's ranks $((cores / 2 > 0 ? cores / 2 : 1)) thread(s) each, node2's lone rank $cores"

# 3. node2's rank 3 dies before step 6: the job ends, and doctor names it.
export FACETRAIN_FAULT_KILL_RANK=3 FACETRAIN_FAULT_KILL_STEP=6
on_nodes "$net.1:2,$net.2:2" 4 "$ft" train --config "$work/a.pbtxt" --quiet --set logging.run_dir="$work/kill" \
  --set schedule.max_steps=1000 > "$work/kill.log" 2>&1
code=$?
[[ $code != 0 && $code != 124 ]] || { cat "$work/kill.log"; fail "the run with a killed rank exited $code (124: it hung)"; }
"$ft" doctor "$work/kill" > "$work/doctor.log" 2>&1 || { cat "$work/doctor.log"; fail "doctor failed"; }
grep -q "^first divergence: .* at step 6: .*rank 3 never reached it" "$work/doctor.log" ||
  { cat "$work/doctor.log"; fail "doctor does not name rank 3 missing at step 6"; }
echo "ok   rank 3 on node2 killed: the job ended (exit $code); doctor: $(grep '^first divergence' "$work/doctor.log" | cut -c1-120)..."
