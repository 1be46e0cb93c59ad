"""Real Kafka (KRaft, from Maven jars) and Redis (Debian's redis-server) for development and tests.

These start genuine servers as child processes on 127.0.0.1; nothing here is a fake.
"""

from genpulse.devservices.kafka import KafkaServer, start_kafka
from genpulse.devservices.kafka_cluster import KafkaCluster, start_kafka_cluster
from genpulse.devservices.ports import free_port
from genpulse.devservices.redis import RedisServer, start_redis

__all__ = [
    "KafkaCluster",
    "KafkaServer",
    "RedisServer",
    "free_port",
    "start_kafka",
    "start_kafka_cluster",
    "start_redis",
]
