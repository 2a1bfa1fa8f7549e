#!/usr/bin/env bash
# Data-parallel ilt-train on this machine's CPU (c10d, Gloo over loopback): 2 ranks x half the
# batch against 1 rank x the batch, exact resume of a 2-rank run, the launchers (built-in,
# Slurm's variables, torchrun where a torch 2.x build has one), a rank that dies, bad input.
# Usage: test_parallel_cli.sh BUILD_DIR SOURCE_DIR PYTHON [TORCHRUN]
set -uo pipefail
bin=$1
src=$2
py=$3
torchrun=${4:-}
source "$src/tests/harness.sh"

"$bin/ilt-segment" "$src/data/demo/udhr-eng-heb.txt" -o w.shard 2>/dev/null
"$bin/ilt-render" w.shard -o i.shard 2>/dev/null
"$bin/ilt-pack" w.shard --images i.shard -o d --max-seq-length 32 --validation-fraction 0.1 2>/dev/null
# The tiny preset without modality dropout: dropout draws differ per rank (each rank has its
# own random stream), which would make the runs differ by more than rounding.
"$bin/ilt-train" --train d.train.examples --config tiny --output probe --max-steps 1 --threads 1 2>/dev/null
"$py" -c "
import json; c = json.load(open('probe/step-0000001/config.json'))['model']; c['modality_dropout'] = 0
json.dump(c, open('nodrop.json', 'w'))"
common=(--train d.train.examples --validation d.validation.examples --config nodrop.json --batch-size 8 --threads 1
  --seed 3 --log-every 5 --eval-every 10 --save-every 10 --warmup 2 --dist-timeout 60)
train() { "$bin/ilt-train" "${common[@]}" "$@"; }

# 1 rank x 8 examples against 2 ranks x 4: the same weights up to summation order. Tolerance
# 1e-3 relative (largest element difference over the tensor's largest value); measured 1.4e-4.
train --output one --max-steps 20 2>/dev/null
train --output two --max-steps 20 --nproc-per-node 2 2>two.err
check "2 ranks: ran 20 steps" test -d two/step-0000020
check "2 ranks x 4 = 1 rank x 8 after 20 steps (weights within 1e-3)" \
  "$py" "$src/tests/parallel/compare_weights.py" one/step-0000020/model.safetensors two/step-0000020/model.safetensors 1e-3
check "2 ranks: validation reduced over ranks (same bpb as 1 rank to 3 digits)" "$py" -c "
import json
v = lambda p: [json.loads(l)['bpb'] for l in open(p) if '\"validation\"' in l]
a, b = v('one/metrics.jsonl'), v('two/metrics.jsonl')
assert len(a) == len(b) == 2 and all(abs(x - y) < 1e-3 * x for x, y in zip(a, b)), (a, b)"
check "2 ranks: metrics.jsonl from rank 0 only (4 train lines), aggregate words/s" "$py" -c "
import json; l = [json.loads(x) for x in open('two/metrics.jsonl') if '\"train\"' in x]
assert len(l) == 4 and all(m['words_per_s'] > 0 for m in l), l"
check "2 ranks: each rank's random state is saved" test -s two/step-0000020/rng-rank1.pt
check "2 ranks: only rank 0 speaks" bash -c "[[ \$(grep -c 'parameters' two.err) -eq 1 ]] && grep -q '2 ranks' two.err"
# Small buckets: most all-reduces start during the backward pass, and the weights still equal
# the 1-rank run's.
train --output two-small --max-steps 20 --bucket-mb 0.05 --nproc-per-node 2 2>/dev/null
check "--bucket-mb 0.05: most buckets start during backward (allreduce_overlap >= 0.5)" "$py" -c "
import json; l = [json.loads(x) for x in open('two-small/metrics.jsonl') if '\"train\"' in x]
assert l and all(m['allreduce_overlap'] >= 0.5 for m in l), [m.get('allreduce_overlap') for m in l]"
check "--bucket-mb 0.05: the same weights as 1 rank (within 1e-3)" \
  "$py" "$src/tests/parallel/compare_weights.py" one/step-0000020/model.safetensors two-small/step-0000020/model.safetensors 1e-3
check "25 MB buckets on a 0.6M-parameter model: one bucket, started when backward ends" "$py" -c "
import json; l = [json.loads(x) for x in open('two/metrics.jsonl') if '\"train\"' in x]
assert l and all(m['allreduce_overlap'] in (0, 1) for m in l), l"
# Gradient accumulation: the all-reduce hooks of the last micro-batch add the earlier ones'.
train --output one-acc --max-steps 6 --grad-accum 2 2>/dev/null
train --output two-acc --max-steps 6 --grad-accum 2 --nproc-per-node 2 2>/dev/null
check "2 ranks, --grad-accum 2 = 1 rank, --grad-accum 2 (weights within 1e-3)" \
  "$py" "$src/tests/parallel/compare_weights.py" one-acc/step-0000006/model.safetensors two-acc/step-0000006/model.safetensors 1e-3
# Modality dropout drops a whole encoder on one rank and not the other: its buckets still
# match (filled after backward), and the run goes on.
"$bin/ilt-train" --train d.train.examples --config tiny --batch-size 8 --threads 1 --max-steps 6 --save-every 6 \
  --warmup 2 --dist-timeout 60 --output drop --nproc-per-node 2 2>/dev/null
check "2 ranks with modality dropout: 6 steps" test -d drop/step-0000006

# Resume of a 2-rank run from step 10 equals the uninterrupted 2-rank run, byte for byte.
train --output two-resumed --resume two/step-0000010 --max-steps 20 --nproc-per-node 2 2>/dev/null
check "2 ranks: resumed run = uninterrupted run (same bytes)" \
  cmp -s two/step-0000020/model.safetensors two-resumed/step-0000020/model.safetensors
# --resume auto: the run's latest checkpoint (here step 20: raise the limit), or a new run.
train --output two --resume auto --max-steps 22 --nproc-per-node 2 2>/dev/null
check "--resume auto continues the run's latest checkpoint" bash -c \
  "test -d two/step-0000022 && grep -q '\"checkpoint\":\"two/step-0000020\"' two/metrics.jsonl"
train --output fresh --resume auto --max-steps 2 2>/dev/null
check "--resume auto without a checkpoint starts a new run" test -d fresh/step-0000002

# Slurm's variables (as srun sets them), two tasks started by hand.
job=$((RANDOM + 1000))
port=$((20000 + RANDOM % 20000))
for r in 0 1; do
  SLURM_STEP_NUM_TASKS=2 SLURM_NTASKS=2 SLURM_PROCID=$r SLURM_LOCALID=$r SLURM_NTASKS_PER_NODE=2 \
    SLURM_JOB_NODELIST=localhost SLURM_JOB_ID=$job MASTER_PORT=$port \
    "$bin/ilt-train" "${common[@]}" --output slurm --max-steps 10 2>slurm$r.err &
  [[ $r == 0 ]] && sleep 0.2
done
wait
check "Slurm variables: 2 tasks train together" bash -c "test -d slurm/step-0000010 && grep -q '2 ranks (slurm)' slurm0.err"

# torchrun --no-python (torch 2.x builds; torchrun's store speaks 2.x's protocol).
if [[ -n $torchrun && -x $torchrun ]] && "$bin/ilt-train" --version | grep -q 'LibTorch 2'; then
  "$torchrun" --nproc-per-node 2 --master-port $((20000 + RANDOM % 20000)) --no-python \
    "$bin/ilt-train" "${common[@]}" --max-steps 20 --output trun >trun.log 2>&1
  check "torchrun --no-python: same weights as --nproc-per-node" \
    cmp -s two/step-0000020/model.safetensors trun/step-0000020/model.safetensors
else
  echo "skipped: torchrun (needs a LibTorch 2.x build and its torchrun)"
fi

# Two "hosts": network namespaces joined by a veth pair, each rank in its own, the store and
# Gloo across the link (needs CAP_NET_ADMIN and iproute2; reported as skipped without).
ns=ilt$$
if command -v ip >/dev/null && ip netns add ${ns}a 2>/dev/null; then
  trap 'ip netns del ${ns}a 2>/dev/null; ip netns del ${ns}b 2>/dev/null; rm -rf "$tmp"' EXIT
  ip netns add ${ns}b && ip link add ${ns}x type veth peer name ${ns}y &&
    ip link set ${ns}x netns ${ns}a && ip link set ${ns}y netns ${ns}b &&
    ip -n ${ns}a addr add 10.213.77.1/24 dev ${ns}x && ip -n ${ns}b addr add 10.213.77.2/24 dev ${ns}y &&
    ip -n ${ns}a link set ${ns}x up && ip -n ${ns}b link set ${ns}y up &&
    ip -n ${ns}a link set lo up && ip -n ${ns}b link set lo up
  check "two hosts: network namespaces set up" test $? -eq 0
  for r in 0 1; do
    host=$([[ $r == 0 ]] && echo a || echo b)
    RANK=$r WORLD_SIZE=2 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR=10.213.77.1 MASTER_PORT=29500 \
      ip netns exec ${ns}$host "$bin/ilt-train" "${common[@]}" --max-steps 20 --output hosts 2>hosts$r.err &
  done
  wait
  check "two hosts: trained together, same weights as 2 local ranks" \
    "$py" "$src/tests/parallel/compare_weights.py" two/step-0000020/model.safetensors hosts/step-0000020/model.safetensors 1e-6
  ip netns del ${ns}a
  ip netns del ${ns}b
else
  echo "skipped: two hosts in network namespaces (needs CAP_NET_ADMIN and ip)"
fi

# Stopping together: SIGTERM to the launcher reaches every rank, which save at the same step
# and exit 128 + 15; --max-minutes is agreed, so both ranks stop at one step with a checkpoint.
"$bin/ilt-train" "${common[@]}" --output term --max-steps 100000 --nproc-per-node 2 2>term.err &
launcher=$!
for _ in $(seq 100); do grep -q "step 5 " term.err 2>/dev/null && break; sleep 0.2; done
kill -TERM $launcher
wait $launcher
status=$?
at=$(sed -n 's/.*stopped by signal 15 at step \([0-9]*\).*/\1/p' term.err)
check "SIGTERM to the launcher: every rank saves and stops at step ${at:-?} (status $status)" \
  test $status -eq 143 -a -n "$at" -a -d "term/step-$(printf %07d "${at:-0}")"
train --output timed --max-steps 100000 --max-minutes 0.05 --nproc-per-node 2 2>timed.err
status=$?
check "--max-minutes: both ranks stop at one step, with a checkpoint (status $status)" bash -c \
  "[[ $status -eq 0 ]] && grep -q 'max-minutes reached at step' timed.err && test -s timed/latest"

# A rank that dies: the other stops with one clear line, well within 60 s.
port=$((20000 + RANDOM % 20000))
RANK=0 WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
  "$bin/ilt-train" "${common[@]}" --output dies --max-steps 100000 2>dies0.err &
p0=$!
RANK=1 WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
  "$bin/ilt-train" "${common[@]}" --output dies --max-steps 100000 2>dies1.err &
p1=$!
for _ in $(seq 100); do grep -q "step 5 " dies0.err 2>/dev/null && break; sleep 0.2; done
start=$(date +%s%3N)
kill -9 $p1
wait $p0
status=$?
ms=$(( $(date +%s%3N) - start )); took=$((ms / 1000)).$((ms % 1000 / 100))
echo "measured: rank 1 killed, rank 0 exited with status $status after ${took} s: $(tail -1 dies0.err)"
check "a rank killed: the other exits non-zero ($status) in ${took}s (< 60 s)" test $status -ne 0 -a ${took%.*} -lt 60
check "a rank killed: one clear line" bash -c "grep -c 'error: rank 0: .*another rank died' dies0.err | grep -qx 1"
# Through the built-in launcher: it names the rank and stops the rest.
"$bin/ilt-train" "${common[@]}" --output dies2 --max-steps 100000 --nproc-per-node 2 2>dies2.err &
launcher=$!
for _ in $(seq 100); do grep -q "step 5 " dies2.err 2>/dev/null && break; sleep 0.2; done
kill -9 "$(pgrep -P $launcher | tail -1)"
start=$(date +%s%3N)
wait $launcher
status=$?
ms=$(( $(date +%s%3N) - start )); took=$((ms / 1000)).$((ms % 1000 / 100))
echo "measured: launcher, rank 1 killed: exit status $status after ${took} s: $(grep -v '^step' dies2.err | tail -3 | tr '\n' '|')"
check "launcher: a rank killed ends the job ($status) in ${took}s" test $status -ne 0 -a ${took%.*} -lt 60
check "launcher: names the rank" grep -q 'ilt-train: rank 1 was killed by signal 9' dies2.err

"$bin/ilt-train" --train d.train.examples --output x --batch-size 1 --nproc-per-node 2 2>small.err
status=$?
check "a batch smaller than the ranks is refused ($status)" bash -c \
  "[[ $status -ne 0 ]] && grep -q 'batch size 1 is smaller than the 2 ranks' small.err && ! test -d x/step-0000001"
report test_parallel_cli
