#!/usr/bin/env bash
# `npm test`: builds, makes sure a real Kafka broker, a RabbitMQ node and an ElasticMQ (SQS)
# server are up for the sink tests (scripts/kafka.sh, rabbitmq.sh, elasticmq.sh; Kafka's and
# ElasticMQ's jars come from Maven Central into .cache/ the first time), makes sure Debian's
# redis-server is installed (the Redis sink tests start their own servers) and the native Redis
# writer is built, runs the ava suite, and stops each broker again if this script started it.
set -uo pipefail
cd "$(dirname "$0")/.."
npm run --silent build || exit 1
scripts/ensure-debian-packages.sh redis-server libhiredis-dev openssl rabbitmq-server || exit 1
# libhiredis-dev installed after `npm install`: build the native Redis writer now.
if [ ! -f build/Release/crowd_redis.node ]; then npm run --silent install || exit 1; fi
export CROWD_TEST_KAFKA_PORT="${CROWD_TEST_KAFKA_PORT:-19092}"
export CROWD_TEST_KAFKA_DIR="${CROWD_TEST_KAFKA_DIR:-$PWD/.cache/kafka/run-test}"
started=0
if ! scripts/kafka.sh status --port "$CROWD_TEST_KAFKA_PORT" --dir "$CROWD_TEST_KAFKA_DIR" >/dev/null 2>&1; then
  scripts/kafka.sh up --port "$CROWD_TEST_KAFKA_PORT" --dir "$CROWD_TEST_KAFKA_DIR" || { echo "cannot start the Kafka broker for the tests"; exit 1; }
  started=1
fi
export CROWD_TEST_RABBITMQ_PORT="${CROWD_TEST_RABBITMQ_PORT:-19672}"
export CROWD_TEST_RABBITMQ_DIR="${CROWD_TEST_RABBITMQ_DIR:-$PWD/.cache/rabbitmq/$CROWD_TEST_RABBITMQ_PORT}"
rabbit_started=0
if ! scripts/rabbitmq.sh status --port "$CROWD_TEST_RABBITMQ_PORT" --dir "$CROWD_TEST_RABBITMQ_DIR" >/dev/null 2>&1; then
  scripts/rabbitmq.sh up --port "$CROWD_TEST_RABBITMQ_PORT" --dir "$CROWD_TEST_RABBITMQ_DIR" || { echo "cannot start the RabbitMQ node for the tests"; exit 1; }
  rabbit_started=1
fi
export CROWD_TEST_ELASTICMQ_PORT="${CROWD_TEST_ELASTICMQ_PORT:-19324}"
export CROWD_TEST_ELASTICMQ_DIR="${CROWD_TEST_ELASTICMQ_DIR:-$PWD/.cache/elasticmq/$CROWD_TEST_ELASTICMQ_PORT}"
sqs_started=0
if ! scripts/elasticmq.sh status --port "$CROWD_TEST_ELASTICMQ_PORT" --dir "$CROWD_TEST_ELASTICMQ_DIR" >/dev/null 2>&1; then
  scripts/elasticmq.sh up --port "$CROWD_TEST_ELASTICMQ_PORT" --dir "$CROWD_TEST_ELASTICMQ_DIR" || { echo "cannot start ElasticMQ for the tests"; exit 1; }
  sqs_started=1
fi
npx ava "$@"
status=$?
if [ "$started" = 1 ]; then scripts/kafka.sh down --port "$CROWD_TEST_KAFKA_PORT" --dir "$CROWD_TEST_KAFKA_DIR" >/dev/null 2>&1; fi
if [ "$rabbit_started" = 1 ]; then scripts/rabbitmq.sh down --port "$CROWD_TEST_RABBITMQ_PORT" --dir "$CROWD_TEST_RABBITMQ_DIR" >/dev/null 2>&1; fi
if [ "$sqs_started" = 1 ]; then scripts/elasticmq.sh down --port "$CROWD_TEST_ELASTICMQ_PORT" --dir "$CROWD_TEST_ELASTICMQ_DIR" >/dev/null 2>&1; fi
exit $status
