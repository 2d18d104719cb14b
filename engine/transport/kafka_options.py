"""Kafka connection settings shared by the Kafka sender, the processor's Kafka ingest and the Kafka exporter.

Parses `kafka://BROKER[:PORT][,BROKER...]/TOPIC?option=value&...` URLs, turns settings into librdkafka
configuration (compression, batching, TLS, SASL, as the reference agent's KAFKA_* variables) and imports
the client behind a guard. Imports neither polars nor the client at module level: the agent uses it.

Options common to every Kafka URL (the reference agent variable in brackets):

- `compression=none|gzip|snappy|lz4|zstd` (KAFKA_COMPRESSION; default lz4, the FlowCollector default)
- `batch_messages=1000` (KAFKA_BATCH_MESSAGES), `batch_bytes=1048576` (KAFKA_BATCH_SIZE), `linger_ms=20`
- `tls=true` (KAFKA_ENABLE_TLS), `tls_ca_cert_path`, `tls_user_cert_path`, `tls_user_key_path`
  (KAFKA_TLS_*), `tls_insecure_skip_verify=true`
- `sasl=plain|scram-sha512` (KAFKA_ENABLE_SASL + KAFKA_SASL_TYPE), `sasl_client_id_path`,
  `sasl_client_secret_path` (KAFKA_SASL_CLIENT_{ID,SECRET}_PATH: files holding the user and password)
- `rdkafka.NAME=VALUE`: any other librdkafka setting, passed as is
"""

from __future__ import annotations

import dataclasses
import logging
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from flowlake.engine.errors import ConfigError

INSTALL_HINT = "pip install 'flowlake[kafka]'"
DEFAULT_PORT = 9092
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")
SASL_TYPES = {"plain": "PLAIN", "scram-sha512": "SCRAM-SHA-512"}
CLIENT_LOG = logging.getLogger("flowlake.kafka.client")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def client() -> ModuleType:
    """The confluent_kafka module; a missing install raises ConfigError naming the extra to install."""
    try:
        import confluent_kafka
    except ImportError as exc:
        raise ConfigError(f"the Kafka transport needs the confluent-kafka client: {INSTALL_HINT}") from exc
    return confluent_kafka


@dataclass(frozen=True)
class KafkaSettings:
    """Where and how to connect; one instance per URL or per `kafka_export` config section."""

    brokers: str
    topic: str
    compression: str = "lz4"
    batch_messages: int = 1000
    batch_bytes: int = 1_048_576
    linger_ms: int = 20
    tls: bool = False
    tls_ca_cert_path: str = ""
    tls_user_cert_path: str = ""
    tls_user_key_path: str = ""
    tls_insecure_skip_verify: bool = False
    sasl: str = ""
    sasl_client_id_path: str = ""
    sasl_client_secret_path: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.brokers:
            raise ConfigError("Kafka: no broker address; write kafka://HOST:9092/TOPIC")
        if not self.topic or "/" in self.topic:
            raise ConfigError(f"Kafka: bad topic {self.topic!r}; write kafka://HOST:9092/TOPIC")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(f"Kafka: compression {self.compression!r} is not one of {', '.join(COMPRESSIONS)}")
        if self.sasl and self.sasl not in SASL_TYPES:
            raise ConfigError(f"Kafka: sasl {self.sasl!r} is not one of {', '.join(SASL_TYPES)}")
        if self.sasl and not (self.sasl_client_id_path and self.sasl_client_secret_path):
            raise ConfigError("Kafka: sasl needs sasl_client_id_path and sasl_client_secret_path (files "
                              "holding the user name and the password)")
        if self.batch_messages < 1 or self.batch_bytes < 1 or self.linger_ms < 0:
            raise ConfigError("Kafka: batch_messages and batch_bytes must be >= 1, linger_ms >= 0")

    def common_config(self) -> dict[str, Any]:
        """librdkafka settings every client of these settings shares: brokers, TLS, SASL, extras."""
        # librdkafka's own log lines go to Python logging, not straight to stderr
        conf: dict[str, Any] = {"bootstrap.servers": self.brokers, "logger": CLIENT_LOG}
        if self.tls:
            conf["enable.ssl.certificate.verification"] = not self.tls_insecure_skip_verify
            for key, path in (("ssl.ca.location", self.tls_ca_cert_path),
                              ("ssl.certificate.location", self.tls_user_cert_path),
                              ("ssl.key.location", self.tls_user_key_path)):
                if path:
                    conf[key] = path
        if self.sasl:
            conf["sasl.mechanism"] = SASL_TYPES[self.sasl]
            conf["sasl.username"] = _read_secret(self.sasl_client_id_path, "sasl_client_id_path")
            conf["sasl.password"] = _read_secret(self.sasl_client_secret_path, "sasl_client_secret_path")
        conf["security.protocol"] = {(False, False): "plaintext", (True, False): "ssl",
                                     (False, True): "sasl_plaintext", (True, True): "sasl_ssl"}[
                                         (self.tls, bool(self.sasl))]
        conf.update(self.extra)
        return conf

    def producer_config(self, max_message_bytes: int) -> dict[str, Any]:
        """Producer settings: idempotent (no duplicates from retries), batching and compression."""
        return {**self.common_config(), "enable.idempotence": True, "acks": "all",
                "compression.type": self.compression, "batch.num.messages": self.batch_messages,
                "batch.size": self.batch_bytes, "linger.ms": self.linger_ms,
                "message.max.bytes": max(max_message_bytes + 65_536, 1_000_000), **self.extra}


def _read_secret(path: str, option: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"Kafka: cannot read {option} {path} ({exc}); mount the secret there") from exc


_FIELDS = {f.name: f for f in dataclasses.fields(KafkaSettings) if f.name not in ("brokers", "topic", "extra")}


def parse_url(url: str, extra_options: tuple[str, ...] = ()) -> tuple[KafkaSettings, dict[str, str]]:
    """`kafka://b1:9092,b2/TOPIC?...` -> settings, plus the values of `extra_options` that were given.

    An option that is neither common nor in `extra_options` is an error listing the valid ones.
    """
    scheme, sep, rest = url.partition("://")
    if scheme != "kafka" or not sep:
        raise ConfigError(f"not a Kafka URL: {url!r}; write kafka://BROKER[:PORT][,BROKER...]/TOPIC")
    location, _, query = rest.partition("?")
    brokers, _, topic = location.partition("/")
    hosts = [b if ":" in b.rsplit("]", 1)[-1] else f"{b}:{DEFAULT_PORT}" for b in brokers.split(",") if b]
    values: dict[str, Any] = {}
    extra: dict[str, str] = {}
    wanted: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key.startswith("rdkafka."):
            extra[key.removeprefix("rdkafka.")] = value
        elif key in extra_options:
            wanted[key] = value
        elif key in _FIELDS:
            values[key] = _convert(key, value, _FIELDS[key].type)
        else:
            valid = sorted([*_FIELDS, *extra_options, "rdkafka.*"])
            raise ConfigError(f"Kafka URL {url!r}: unknown option {key!r}; valid options: {', '.join(valid)}")
    settings = KafkaSettings(brokers=",".join(hosts), topic=urllib.parse.unquote(topic), extra=extra, **values)
    return settings, wanted


def _convert(key: str, value: str, typ: object) -> Any:
    if typ in (bool, "bool"):
        if value.lower() not in _TRUE + _FALSE:
            raise ConfigError(f"Kafka option {key}={value!r}: expected true or false")
        return value.lower() in _TRUE
    if typ in (int, "int"):
        return to_int(key, value)
    return value


def to_int(key: str, value: str) -> int:
    """An integer URL option; anything else is a ConfigError naming the option."""
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"Kafka option {key}={value!r}: expected an integer") from None
