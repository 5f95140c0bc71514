"""HTTPS and mutual TLS on a real gunicorn, with certificates made by `cryptography`."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.infra.tls import gunicorn_tls_options
from config import ConfigError
from tests.servers import GunicornServer, settings_of


class Authority:
    """A throwaway certificate authority that writes PEM files into a directory."""

    def __init__(self, directory: Path, name: str):
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            self._builder(subject, subject, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = self._write(f"{name}-ca.pem", self.cert)

    @staticmethod
    def _builder(subject, issuer, public_key):
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
        )

    def _write(self, filename: str, cert, key=None) -> str:
        path = self.directory / filename
        data = cert.public_bytes(serialization.Encoding.PEM)
        path.write_bytes(data)
        if key is not None:
            key_path = self.directory / (filename[:-4] + "-key.pem")
            key_path.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ))
            return str(path), str(key_path)
        return str(path)

    def issue(self, name: str, *, server: bool) -> tuple[str, str]:
        """(certificate path, key path) signed by this authority."""
        key = ec.generate_private_key(ec.SECP256R1())
        builder = self._builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), self.cert.subject,
            key.public_key(),
        ).add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
        ), critical=False)
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ), critical=False)
        return self._write(f"{name}.pem", builder.sign(self.key, hashes.SHA256()), key)


@pytest.fixture
def pki(tmp_path):
    ours = Authority(tmp_path, "ours")
    return {
        "ca": ours.cert_path,
        "server": ours.issue("server", server=True),
        "client": ours.issue("client", server=False),
        "rogue_client": Authority(tmp_path, "rogue").issue("rogue-client", server=False),
    }


def tls_env(pki, mutual: bool) -> dict[str, str]:
    env = {
        "ORDERPROCESSING_TLS_CERT_FILE": pki["server"][0],
        "ORDERPROCESSING_TLS_KEY_FILE": pki["server"][1],
    }
    if mutual:
        env["ORDERPROCESSING_TLS_CLIENT_CA_FILE"] = pki["ca"]
    return env


def refused(url: str, **kwargs) -> bool:
    try:
        requests.get(url, timeout=5, **kwargs)
    except requests.exceptions.RequestException:
        return True
    return False


@pytest.mark.slow
def test_a_configured_certificate_serves_https_only(sqlite_app, pki, tmp_path):
    with GunicornServer(settings_of(sqlite_app), tmp_path, workers=1, scheme="https",
                        verify=pki["ca"], extra_env=tls_env(pki, mutual=False)) as server:
        response = requests.get(server.url + "/healthz", verify=pki["ca"], timeout=5)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert refused(server.url.replace("https://", "http://") + "/healthz")


@pytest.mark.slow
def test_mutual_tls_accepts_only_client_certificates_signed_by_the_configured_ca(
    sqlite_app, pki, tmp_path
):
    with GunicornServer(settings_of(sqlite_app), tmp_path, workers=1, scheme="https",
                        verify=pki["ca"], cert=pki["client"],
                        extra_env=tls_env(pki, mutual=True)) as server:
        url = server.url + "/healthz"
        assert refused(url, verify=pki["ca"]), "no client certificate must be refused"
        assert refused(url, verify=pki["ca"], cert=pki["rogue_client"]), (
            "a certificate from another CA must be refused"
        )
        response = requests.get(url, verify=pki["ca"], cert=pki["client"], timeout=5)
        assert response.status_code == 200
        # Every path sits behind the same handshake, /metrics included.
        assert refused(server.url + "/metrics", verify=pki["ca"])


def test_tls_settings_that_cannot_work_are_start_up_errors(pki, tmp_path):
    with pytest.raises(ConfigError, match="TLS_CERT_FILE"):
        gunicorn_tls_options({"TLS_CLIENT_CA_FILE": pki["ca"]})
    with pytest.raises(ConfigError, match="not a readable file"):
        gunicorn_tls_options({"TLS_CERT_FILE": str(tmp_path / "missing.pem")})
    assert gunicorn_tls_options({}) == {}
    options = gunicorn_tls_options({
        "TLS_CERT_FILE": pki["server"][0], "TLS_KEY_FILE": pki["server"][1],
        "TLS_CLIENT_CA_FILE": pki["ca"],
    })
    assert options["ca_certs"] == pki["ca"] and options["cert_reqs"] == 2  # ssl.CERT_REQUIRED
