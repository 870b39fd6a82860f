#!/bin/sh
# The broker's whole server.properties comes from $KAFKA_SERVER_PROPERTIES (written by the test harness, the
# same settings as its local broker); storage is formatted with $KAFKA_CLUSTER_ID, then the broker runs.
set -eu
printf '%s\n' "$KAFKA_SERVER_PROPERTIES" >/var/lib/kafka/server.properties
CP='/opt/kafka/libs/*'
LOG="-Dlog4j.configuration=file:/opt/kafka/log4j.properties"
java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "$LOG" -cp "$CP" kafka.tools.StorageTool format \
	--cluster-id "$KAFKA_CLUSTER_ID" --config /var/lib/kafka/server.properties --ignore-formatted
exec java -Xmx512m -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
	-Djava.awt.headless=true "$LOG" -cp "$CP" kafka.Kafka /var/lib/kafka/server.properties
