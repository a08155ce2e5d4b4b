"""Turn --host / OLLAMA_HOST into a base URL by Ollama's own rules (Go envconfig.Host()).

Where Ollama silently falls back to a default (bad port, junk host), ostream raises
HostError instead: an unparsable value is a usage error.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from ostream.errors import UsageError

DEFAULT_URL = "http://127.0.0.1:11434"

_PORTS = {"http": "80", "https": "443"}
_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")  # ASCII only: IDNs as punycode
_ZONE = re.compile(r"[A-Za-z0-9_.-]+")
_PATH = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")  # RFC 3986 pchar and "/"


class HostError(UsageError, ValueError):
    """The value cannot be turned into a URL (message says why, names the value): a
    usage error wherever it is raised."""


def base_url(value: str | None) -> str:
    """The base URL for --host/OLLAMA_HOST `value` (None or empty/blank → DEFAULT_URL).
    Always "scheme://host:port" plus "/path" when a base path was given, never a trailing slash."""
    # Ollama: strings.Trim(strings.TrimSpace(v), "\"'"), then TrimSpace again in Host().
    s = (value or "").strip().strip("\"'").strip()
    if not s:
        return DEFAULT_URL
    try:
        return _parse(s)
    except HostError as e:
        raise HostError(f"invalid host {_without_password(s)!r}: {e}") from None


def _without_password(s: str) -> str:
    """`s` with everything between the scheme and its last @ replaced by ***."""
    scheme, sep, rest = s.partition("://") if "://" in s else ("", "", s)
    if "@" not in rest:
        return s
    return scheme + sep + "***@" + rest.rpartition("@")[2]


def _parse(s: str) -> str:
    scheme, sep, rest = s.partition("://")
    if not sep:
        if s == "ollama.com":
            return "https://ollama.com:443"
        scheme, rest, default_port = "http", s, "11434"
    else:
        # Go's strings.Cut is case-sensitive, so Ollama mishandles "HTTP://h"; RFC 3986 says
        # schemes are case-insensitive, so we accept any case and normalise to lower case.
        scheme = scheme.lower()
        if scheme not in _PORTS:
            raise HostError("scheme must be http or https")
        default_port = _PORTS[scheme]
    hostport, _, path = rest.partition("/")
    if not hostport:
        raise HostError("missing host")
    if "@" in hostport:  # Ollama cannot use it either; the password is not repeated
        raise HostError("a user:password@ part is not supported")
    port: str | None = None
    if hostport.startswith("["):  # "[v6]" or "[v6]:port", as Go's net.SplitHostPort
        host, close, after = hostport[1:].partition("]")
        if not close or "[" in host or "]" in after or (after and not after.startswith(":")):
            raise HostError("unbalanced brackets")
        port = after[1:] if after else None
    elif "[" in hostport or "]" in hostport:
        raise HostError("unbalanced brackets")
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    else:  # a name, an IPv4 address, or a bare IPv6 address ("::1")
        host = hostport
    if port is not None and not 1 <= _port_number(port) <= 65535:
        raise HostError("port must be 1-65535")
    path = path.rstrip("/")
    if not _PATH.fullmatch(path):
        raise HostError("invalid character in path")
    url = f"{scheme}://{_connectable(host)}:{int(port or default_port)}"
    return f"{url}/{path}" if path else url


def _port_number(port: str) -> int:
    """The port as Ollama reads it: decimal, leading zeros allowed (Go's
    strconv.ParseInt(port, 10, 32), then its dialer), so 011434 is 11434, not octal;
    no sign (Go's URL parser refuses one at request time). -1: not a port."""
    if not re.fullmatch("[0-9]+", port):
        return -1
    digits = port.lstrip("0") or "0"
    return int(digits) if len(digits) <= 5 else -1


def _connectable(host: str) -> str:
    """`host` as it goes in a URL: IPv6 in brackets, bind-all addresses made connectable."""
    if not host:  # ":1234" means all interfaces to a server; connect locally
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host.replace("%25", "%"))
    except ValueError:
        if _NAME.fullmatch(host):
            return host
        raise HostError(f"{host!r} is not a valid host name or IP address") from None
    if isinstance(addr, ipaddress.IPv4Address):
        return "127.0.0.1" if addr.is_unspecified else str(addr)
    if addr.is_unspecified:
        return "[::1]"
    if addr.scope_id is not None and not _ZONE.fullmatch(addr.scope_id):
        raise HostError(f"{host!r} is not a valid IPv6 zone")
    return f"[{str(addr).replace('%', '%25')}]"  # RFC 6874 zone escape


def resolve(cli_value: str | None, environ: Mapping[str, str]) -> str:
    """--host wins over OLLAMA_HOST, which wins over the default.
    An explicit empty --host selects the default (so it can override OLLAMA_HOST)."""
    return base_url(cli_value if cli_value is not None else environ.get("OLLAMA_HOST"))
