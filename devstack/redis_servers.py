"""Real Redis servers for tests: the shared one, and private `redis-server` processes.

Private servers run on a free port in a temp dir, optionally with AOF, and can be killed with
SIGKILL and restarted on the same files to test durability. A server can also speak only TLS
(`tls=make_tls_files(dir)`: a throwaway CA and a server certificate for 127.0.0.1, made with the
openssl command) and admit only an ACL user (`acl_user=(name, password)`), as a managed Redis
does; its `url` is then `rediss://name:password@127.0.0.1:port/0?ssl_ca_certs=...`.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed; run `make test` (it installs it with apt-get as root) "
            "or install the Debian/Ubuntu package redis-server"
        )
    return binary


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_tls_files(directory: Path, *, days: int = 2) -> TlsFiles:
    """A throwaway CA and a server certificate it signed for 127.0.0.1 / localhost."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is not installed (Debian/Ubuntu: openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "redis.key", directory / "redis.csr", directory / "redis.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="ascii")

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()[-1000:]}")

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
        str(ca_cert), "-days", str(days), "-subj", "/CN=Parley test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", str(days), "-extfile", str(ext))  # fmt: skip
    return TlsFiles(ca_cert=ca_cert, server_cert=cert, server_key=key)


@dataclass
class RedisServer:
    """One private redis-server; `url` is stable across `kill()` / `start()`."""

    dir: Path
    aof: bool = True
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # TLS only (no plain-text port) when set.
    tls: TlsFiles | None = None
    # (user, password): the default user is switched off and only this ACL user gets in.
    acl_user: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        auth = ""
        if self.acl_user is not None:
            user, password = self.acl_user
            auth = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        if self.tls is not None:
            ca = quote(str(self.tls.ca_cert), safe="/")
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={ca}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.tls is not None:
            ports = ["--port", "0", "--tls-port", str(self.port)]
            ports += ["--tls-cert-file", str(self.tls.server_cert)]
            ports += ["--tls-key-file", str(self.tls.server_key)]
            ports += ["--tls-ca-cert-file", str(self.tls.ca_cert), "--tls-auth-clients", "no"]
        else:
            ports = ["--port", str(self.port)]
        args = [
            redis_server_binary(),
            *ports,
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.dir / "redis.log"),
        ]
        if self.acl_user is not None:
            user, password = self.acl_user
            # What Parley needs (keys, RQ's pub/sub channels, every command); a managed Redis
            # may grant less: see docs/running-a-study.md.
            args += ["--user", "default", "off"]
            args += ["--user", user, "on", f">{password}", "~*", "&*", "+@all"]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url)
        try:
            while True:
                try:
                    # AOF loading may still be under way right after start.
                    if client.ping() and client.info("persistence").get("loading", 0) == 0:
                        return self
                except redis.exceptions.RedisError:
                    pass
                if self.process.poll() is not None:
                    log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited at start:\n{log}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not answer")
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown save, as a crash or power loss would be."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
