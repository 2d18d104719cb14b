#!/usr/bin/env bash
# Fetch an Apache Kafka broker (KRaft, Scala 2.13 build) from Maven Central, for the tests in tests/kafka/.
#
# Called by `make kafka-broker` (CI) and by hand; tests/kafka/broker.py runs it from
# ${FLOWLAKE_CACHE:-/var/cache/flowlake}/kafka/<version>/libs as `java -cp 'libs/*' kafka.Kafka`.
# A second run with the jars present does nothing. Needs `java` (17+, Kafka 4 requires it) and `mvn`.
#
# Why Maven and not the release tarball: only package registries are reachable from CI. The broker's
# jar `org.apache.kafka:kafka_2.13` and its runtime dependencies are exactly what the tarball's libs/
# holds for the broker (no connect, streams or shell scripts); a tiny generated pom lets
# `mvn dependency:copy-dependencies` resolve them, plus log4j's slf4j binding so the broker can log.
# Seen here: 7 s with an empty ~/.m2 (56 MB downloaded), 43 MB of jars in 45 files kept.
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
LOG4J_VERSION="${LOG4J_VERSION:-2.25.5}"  # the log4j-core kafka_2.13 $KAFKA_VERSION depends on
CACHE="${FLOWLAKE_CACHE:-/var/cache/flowlake}/kafka"
DEST="$CACHE/$KAFKA_VERSION"

if [[ -f "$DEST/.complete" ]]; then
  echo "kafka $KAFKA_VERSION already fetched in $DEST/libs"
  exit 0
fi
command -v java >/dev/null || { echo "java not found: apt-get install openjdk-17-jre-headless" >&2; exit 1; }
command -v mvn >/dev/null || { echo "mvn not found: apt-get install maven" >&2; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9  # two test sessions fetching at once: the second waits, then finds the jars
if [[ -f "$DEST/.complete" ]]; then
  echo "kafka $KAFKA_VERSION already fetched in $DEST/libs"
  exit 0
fi

started=$(date +%s)
work=$(mktemp -d "$CACHE/.fetch-XXXXXX")
trap 'rm -rf "$work"' EXIT
cat > "$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.flowlake.test</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
if ! (cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$work/libs" > "$work/mvn.log" 2>&1); then
  cat "$work/mvn.log" >&2
  echo "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central (log above)" >&2
  exit 1
fi
ls "$work/libs"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null  # fail loudly if Maven resolved nothing
rm -rf "$DEST"
mkdir -p "$DEST"
mv "$work/libs" "$DEST/libs"
touch "$DEST/.complete"
echo "kafka $KAFKA_VERSION: $(ls "$DEST/libs" | wc -l) jars, $(du -sh "$DEST/libs" | cut -f1) in $DEST/libs" \
     "($(( $(date +%s) - started )) s)"
