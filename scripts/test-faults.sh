#!/usr/bin/env bash
# `npm run test:faults`: the fault and hostile-input scenarios in their long versions (minutes
# of overload, Kafka, RabbitMQ or SQS down for two minutes, ...), against the real brokers,
# then their figures rendered into docs/reliability.md. `npm run test:faults -- --short` runs the short versions
# (the ones `npm test` runs) and renders those.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--short" ]; then shift; else export CROWD_FAULTS_LONG=1; fi
mkdir -p .cache
export CROWD_FIGURES_FILE="$PWD/.cache/figures-$(date -u +%Y-%m-%dT%H-%M-%S).jsonl"
: > "$CROWD_FIGURES_FILE"
files=()
for f in crash-recovery disk-full overload hostile-http fuzz-http kafka-sink redis-sink http-sink amqp-sink sqs-sink admin-servers; do files+=("dist/test/$f.test.js"); done
bash scripts/run-tests.sh "${files[@]}" "$@"
status=$?
node scripts/render-reliability.mjs "$CROWD_FIGURES_FILE" docs/reliability.md
exit $status
