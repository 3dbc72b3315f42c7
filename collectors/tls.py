"""TLS for the collectors' connections, on an ``ssl.SSLContext``.

riemann-client 7.0.0's own ``TLSTransport`` calls ``ssl.wrap_socket`` with TLS 1.0:
insecure, and gone in Python 3.12. The collectors build their TLS here instead: TLS 1.2
or later, the server's certificate checked against the CA bundle given (the system's
when none is) and its name against the host connected to, and a client certificate
when the server asks for one (Riemann's TLS listener can require it).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from ledger.errors import InvalidInput


def client_context(
    ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """A context for connecting to a server: verified, hostname-checked, TLS 1.2+.

    ``ca``: PEM bundle of the CAs to trust (the system's when ``None``). ``cert`` and
    ``key``: the client certificate and its key (PEM; the key may sit in ``cert``).
    """
    if key is not None and cert is None:
        raise InvalidInput("a client key was given without its certificate (riemann_cert)")
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(ca) if ca is not None else None
        )
        if cert is not None:
            context.load_cert_chain(str(cert), str(key) if key is not None else None)
    except (OSError, ssl.SSLError) as error:
        named = ", ".join(str(p) for p in (ca, cert, key) if p is not None)
        raise InvalidInput(f"cannot load the TLS files ({named}): {error}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context
