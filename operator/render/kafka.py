"""Kafka connection settings from a FlowCollector kafka section: URL options, config keys and the Secret
volumes behind them; used by the agent (producer URL), the processor config (consumer URL, kafka_export)
and the pod templates that mount the Secrets.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

from flowlake.operator.render.common import ETC, Obj

SASL = {"Plain": "plain", "ScramSHA512": "scram-sha512"}


@dataclass
class KafkaFiles:
    """Where a kafka section's certificates and credentials are mounted, and the volumes that put them there."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    sasl_id: str = ""
    sasl_secret: str = ""
    volumes: list[Obj] = field(default_factory=list)
    mounts: list[Obj] = field(default_factory=list)


def files(kafka: Obj, name: str) -> KafkaFiles:
    """Secret volumes of `kafka.tls` and `kafka.sasl`, named `<name>-...`, mounted under /etc/flowlake/<name>/."""
    out = KafkaFiles()

    def mount(vol: str, secret: str, items: list[str]) -> str:
        path = f"{ETC}/{vol}"
        out.volumes.append({"name": vol, "secret": {"secretName": secret,
                                                    "items": [{"key": k, "path": k} for k in items]}})
        out.mounts.append({"name": vol, "mountPath": path, "readOnly": True})
        return path

    tls, sasl = kafka["tls"], kafka["sasl"]
    if tls["enable"] and "caCert" in tls:
        out.ca = f"{mount(f'{name}-ca', tls['caCert']['name'], [tls['caCert']['key']])}/{tls['caCert']['key']}"
    if tls["enable"] and "userCert" in tls:
        uc = tls["userCert"]
        base = mount(f"{name}-user", uc["name"], sorted({uc["certKey"], uc["keyKey"]}))
        out.cert, out.key = f"{base}/{uc['certKey']}", f"{base}/{uc['keyKey']}"
    if sasl["type"] != "Disabled":
        base = mount(f"{name}-sasl", sasl["secretName"], sorted({sasl["clientIDKey"], sasl["clientSecretKey"]}))
        out.sasl_id, out.sasl_secret = f"{base}/{sasl['clientIDKey']}", f"{base}/{sasl['clientSecretKey']}"
    return out


def url(kafka: Obj, f: KafkaFiles, **extra: str) -> str:
    """kafka://BROKERS/TOPIC?options for `flowlake agent --target` and the processor's `ingest`."""
    opts: dict[str, str] = {"compression": kafka["compression"]}
    tls, sasl = kafka["tls"], kafka["sasl"]
    if tls["enable"]:
        opts["tls"] = "true"
        if tls["insecureSkipVerify"]:
            opts["tls_insecure_skip_verify"] = "true"
        for key, path in (("tls_ca_cert_path", f.ca), ("tls_user_cert_path", f.cert), ("tls_user_key_path", f.key)):
            if path:
                opts[key] = path
    if sasl["type"] != "Disabled":
        opts.update(sasl=SASL[sasl["type"]], sasl_client_id_path=f.sasl_id, sasl_client_secret_path=f.sasl_secret)
    opts.update(extra)
    return f"kafka://{','.join(kafka['brokers'])}/{kafka['topic']}?{urllib.parse.urlencode(opts, safe='/,')}"


def export_config(kafka: Obj, f: KafkaFiles) -> Obj:
    """The processor config's `kafka_export` section for an exporter of type Kafka."""
    tls, sasl = kafka["tls"], kafka["sasl"]
    return {"address": ",".join(kafka["brokers"]), "topic": kafka["topic"], "format": kafka["format"],
            "compression": kafka["compression"],
            "tls": {"enable": tls["enable"], "insecure_skip_verify": tls["insecureSkipVerify"],
                    "ca_cert_path": f.ca, "user_cert_path": f.cert, "user_key_path": f.key},
            "sasl": {"type": sasl["type"], "client_id_path": f.sasl_id, "client_secret_path": f.sasl_secret}}
