"""A deliberately small HTTP/1.1 client for webhook deliveries: one keep-alive connection
per subscription, one request at a time, only the status code read.

Why not httpx here: a delivery needs none of a general client's features (redirects are
refused, cookies, proxies, HTTP/2), and per request httpx costs several times the
round trip on loopback, which bounded catch-up to a few hundred events/s per
subscription. This client writes the request in one `write`, reads the status line and
headers, reads a small `content-length` body (≤ 64 KiB) to keep the connection, and
otherwise closes it — so a huge or endless response body is never read into memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
MAX_KEPT_BODY = 64 * 1024


class NoResponse(Exception):
    """The request did not get a complete HTTP response (connect, TLS, protocol, timeout)."""


class WebhookConnection:
    """Keeps one connection to one URL's origin; `post()` reconnects when needed."""

    def __init__(self, url: str, *, timeout: float, user_agent: str = "ioc-feeds") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = (self.port == 443) if self.tls else (self.port == 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default_port else f"{host}:{self.port}"
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self.user_agent = user_agent
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        """POST `body`; return the status code or raise `NoResponse` / `TimeoutError`."""
        request = self._request(body, headers)
        # A kept connection may have been closed by the server meanwhile: one fresh retry
        # only when the failure happened on a reused connection before any response.
        reused = self._writer is not None
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    return await self._exchange(request)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    await self.close()
                    if not reused:
                        raise NoResponse(f"{type(exc).__name__}: {exc}") from None
                    return await self._exchange(request)
        except TimeoutError:
            await self.close()
            raise
        except (ConnectionError, asyncio.IncompleteReadError, OSError, ValueError) as exc:
            await self.close()
            raise NoResponse(f"{type(exc).__name__}: {exc}".strip()) from None
        except NoResponse:
            await self.close()
            raise

    def _request(self, body: bytes, headers: dict[str, str]) -> bytes:
        lines = [
            f"POST {self.target} HTTP/1.1",
            f"host: {self.host_header}",
            f"user-agent: {self.user_agent}",
            f"content-length: {len(body)}",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def _exchange(self, request: bytes) -> int:
        if self._writer is None:
            context = ssl.create_default_context() if self.tls else None
            self._reader, self._writer = await asyncio.open_connection(
                self.host,
                self.port,
                ssl=context,
                server_hostname=self.host if self.tls else None,
                limit=MAX_HEAD,
            )
        assert self._reader is not None and self._writer is not None
        self._writer.write(request)
        await self._writer.drain()
        status, headers = await self._read_head(self._reader)
        while 100 <= status < 200:  # interim responses (100 Continue): read the real one
            status, headers = await self._read_head(self._reader)
        length = headers.get("content-length", "")
        keep = (
            length.isdigit()
            and int(length) <= MAX_KEPT_BODY
            and "close" not in headers.get("connection", "").lower()
            and "transfer-encoding" not in headers
        )
        if keep:
            await self._reader.readexactly(int(length))
        else:
            await self.close()
        return status

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise NoResponse("response headers larger than 64 KiB") from None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise NoResponse(f"not an HTTP response: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers
