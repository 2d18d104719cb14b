"""A real Apache Kafka broker (KRaft, one node, JVM) on loopback, for tests/kafka/ and benchmarks/bench_kafka.py.

The jars come from tests/kafka/build_kafka.sh (Maven Central) into
${FLOWLAKE_CACHE:-/var/cache/flowlake}/kafka/<version>/libs; `KafkaBroker.start` runs the script when they
are missing. The broker combines broker and controller roles, formats its log directory with
`kafka.tools.StorageTool`, and listens on four loopback ports: PLAINTEXT, SASL_PLAINTEXT (users for PLAIN
and SCRAM-SHA-512), SSL (a test CA made with openssl; client certificates optional) and the controller.
Stopped by PID (SIGTERM, then SIGKILL). Seen here: about 8-15 s to start on two busy cores.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.procs import free_port

KAFKA_VERSION = os.environ.get("KAFKA_VERSION", "4.4.0")
CACHE = Path(os.environ.get("FLOWLAKE_CACHE", "/var/cache/flowlake")) / "kafka" / KAFKA_VERSION
BUILD = Path(__file__).with_name("build_kafka.sh")
PLAIN_USER, PLAIN_PASSWORD = "flowlake", "plain-secret"
SCRAM_USER, SCRAM_PASSWORD = "flowlake-scram", "scram-secret"


class BrokerUnavailable(RuntimeError):
    """The broker cannot run here (no java, no jars, no client); the message says what is missing."""


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certs(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=flowlake-test-ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=flowlake-{name}",
                 "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
                 "-CAcreateserial", "-days", "2", "-extfile", str(d / "san.ext"), "-out", str(d / f"{name}.crt"))
    # Kafka's PEM key store: the PKCS#8 key and the certificate chain in one file
    (d / "server.pem").write_text((d / "server.key").read_text() + (d / "server.crt").read_text())


@dataclass
class KafkaBroker:
    """One broker process; `bootstrap` (PLAINTEXT), `sasl_bootstrap` and `ssl_bootstrap` once started."""

    workdir: Path
    partitions: int = 4
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['PLAINTEXT']}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['SASL_PLAINTEXT']}"

    @property
    def ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['SSL']}"

    @property
    def log(self) -> Path:
        return self.workdir / "broker.log"

    def _libs(self) -> Path:
        if shutil.which("java") is None:
            raise BrokerUnavailable("java not found: apt-get install openjdk-17-jre-headless")
        if not (CACHE / ".complete").exists():
            done = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise BrokerUnavailable(f"{BUILD} failed: {done.stderr[-2000:] or done.stdout[-2000:]}")
        return CACHE / "libs"

    def _properties(self) -> str:
        p, d = self.ports, self.workdir
        listeners = ",".join(f"{name}://127.0.0.1:{p[name]}" for name in ("PLAINTEXT", "SASL_PLAINTEXT", "SSL"))
        return "\n".join([
            "process.roles=broker,controller", "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{p['CONTROLLER']}",
            f"listeners={listeners},CONTROLLER://127.0.0.1:{p['CONTROLLER']}",
            f"advertised.listeners={listeners}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,"
            "CONTROLLER:PLAINTEXT",
            "controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
            "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain."
            f'PlainLoginModule required user_{PLAIN_USER}="{PLAIN_PASSWORD}";',
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram."
            "ScramLoginModule required;",
            "ssl.keystore.type=PEM", f"ssl.keystore.location={d / 'server.pem'}",
            "ssl.truststore.type=PEM", f"ssl.truststore.location={d / 'ca.crt'}", "ssl.client.auth=requested",
            f"log.dirs={d / 'data'}", f"num.partitions={self.partitions}",
            "offsets.topic.replication.factor=1", "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1", "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=3000",
            "auto.create.topics.enable=true", ""])

    def start(self, timeout: float = 180.0) -> None:
        libs = self._libs()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ports = {name: free_port() for name in ("PLAINTEXT", "SASL_PLAINTEXT", "SSL", "CONTROLLER")}
        make_certs(self.workdir)
        props = self.workdir / "server.properties"
        props.write_text(self._properties())
        (self.workdir / "log4j2.properties").write_text(
            "rootLogger.level=WARN\nrootLogger.appenderRef.out.ref=out\nappender.out.type=Console\n"
            "appender.out.name=out\nappender.out.layout.type=PatternLayout\n"
            "appender.out.layout.pattern=[%d] %p %m (%c)%n\n")
        java = ["java", "-Xms256m", "-Xmx1g", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}", "-cp", f"{libs}/*"]
        scram = f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"
        subprocess.run([*java, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(props),
                        "--add-scram", scram], check=True, capture_output=True, timeout=300)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([*java, "kafka.Kafka", str(props)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerUnavailable(f"kafka exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            if self._ready():
                return
            time.sleep(0.5)
        self.stop()
        raise BrokerUnavailable(f"kafka did not answer within {timeout:.0f}s: {self.log.read_text()[-3000:]}")

    def _ready(self) -> bool:
        """The broker answers a metadata request (an open port alone is not enough)."""
        from confluent_kafka.admin import AdminClient

        try:
            meta = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0}).list_topics(timeout=2)
        except Exception:
            return False
        return bool(meta.brokers)

    def create_topic(self, name: str, partitions: int | None = None) -> str:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        futures = admin.create_topics([NewTopic(name, partitions or self.partitions, 1)])
        for f in futures.values():
            f.result(60)
        return name

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding (what `random-uuid` prints)."""
    import base64

    while True:  # Kafka never hands out an id starting with "-": the CLI would read it as an option
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid
